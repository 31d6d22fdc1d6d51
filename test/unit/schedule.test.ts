/** The EventBridge schedule expression parser and its next() in UTC. Table-driven. */
import test from 'ava';
import { HearthError } from '../../src/errors.js';
import { parseSchedule } from '../../src/queue/schedule.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** [expression, from, the next ticks strictly after `from`] */
const NEXT: Array<[string, string, string[]]> = [
  ['rate(1 minute)', '2026-11-26T13:00:30Z', ['2026-11-26T13:01:00.000Z', '2026-11-26T13:02:00.000Z']],
  ['rate(5 minutes)', '2026-11-26T13:00:00Z', ['2026-11-26T13:05:00.000Z', '2026-11-26T13:10:00.000Z']],
  ['rate(2 hours)', '2026-11-26T13:00:00Z', ['2026-11-26T14:00:00.000Z', '2026-11-26T16:00:00.000Z']],
  ['rate(1 day)', '2026-11-26T13:00:00Z', ['2026-11-27T00:00:00.000Z', '2026-11-28T00:00:00.000Z']],
  // Aligned to the epoch: day 20,784 (2026-11-27) is a multiple of 3.
  ['rate(3 days)', '2026-11-26T13:00:00Z', ['2026-11-27T00:00:00.000Z', '2026-11-30T00:00:00.000Z']],
  ['  rate(10   minutes)  ', '2026-11-26T13:00:00Z', ['2026-11-26T13:10:00.000Z']],
  // Every day at 12:00 UTC.
  ['cron(0 12 * * ? *)', '2026-11-26T12:00:00Z', ['2026-11-27T12:00:00.000Z', '2026-11-28T12:00:00.000Z']],
  ['cron(0 12 * * ? *)', '2026-11-26T11:59:59Z', ['2026-11-26T12:00:00.000Z']],
  // Every 15 minutes, weekdays only (2026-11-27 is a Friday).
  ['cron(0/15 * ? * MON-FRI *)', '2026-11-27T23:50:00Z', ['2026-11-30T00:00:00.000Z', '2026-11-30T00:15:00.000Z']],
  [
    'cron(*/20 9-10 ? * 2-6 *)',
    '2026-11-26T10:45:00Z',
    ['2026-11-27T09:00:00.000Z', '2026-11-27T09:20:00.000Z', '2026-11-27T09:40:00.000Z', '2026-11-27T10:00:00.000Z'],
  ],
  // Day-of-week numbers: 1 = Sunday, 7 = Saturday.
  ['cron(0 8 ? * 1 *)', '2026-11-26T00:00:00Z', ['2026-11-29T08:00:00.000Z', '2026-12-06T08:00:00.000Z']],
  ['cron(0 8 ? * 7 *)', '2026-11-26T00:00:00Z', ['2026-11-28T08:00:00.000Z']],
  ['cron(0 8 ? * SUN,sat *)', '2026-11-26T00:00:00Z', ['2026-11-28T08:00:00.000Z', '2026-11-29T08:00:00.000Z', '2026-12-05T08:00:00.000Z']],
  // The 31st: skips months without one.
  ['cron(0 0 31 * ? *)', '2026-11-01T00:00:00Z', ['2026-12-31T00:00:00.000Z', '2027-01-31T00:00:00.000Z', '2027-03-31T00:00:00.000Z']],
  // Last day of the month, leap and non-leap February.
  ['cron(0 0 L * ? *)', '2027-01-31T00:00:00Z', ['2027-02-28T00:00:00.000Z', '2027-03-31T00:00:00.000Z', '2027-04-30T00:00:00.000Z']],
  ['cron(0 0 L 2 ? *)', '2027-03-01T00:00:00Z', ['2028-02-29T00:00:00.000Z', '2029-02-28T00:00:00.000Z']],
  ['cron(30 23 L * ? *)', '2026-12-31T23:29:00Z', ['2026-12-31T23:30:00.000Z', '2027-01-31T23:30:00.000Z']],
  // Month names and ranges; year ranges.
  ['cron(0 6 1 JAN,jul ? *)', '2026-11-26T00:00:00Z', ['2027-01-01T06:00:00.000Z', '2027-07-01T06:00:00.000Z', '2028-01-01T06:00:00.000Z']],
  ['cron(0 6 1 MAR-MAY ? 2027)', '2026-11-26T00:00:00Z', ['2027-03-01T06:00:00.000Z', '2027-04-01T06:00:00.000Z', '2027-05-01T06:00:00.000Z']],
  ['cron(0 6 1 1 ? 2027-2028/1)', '2027-06-01T00:00:00Z', ['2028-01-01T06:00:00.000Z']],
  // W: nearest weekday. 2026-08-01 is a Saturday -> Monday 3rd; 2026-11-15 is a Sunday -> Monday 16th.
  ['cron(0 9 1W * ? *)', '2026-07-15T00:00:00Z', ['2026-08-03T09:00:00.000Z', '2026-09-01T09:00:00.000Z']],
  ['cron(0 9 15W * ? *)', '2026-11-01T00:00:00Z', ['2026-11-16T09:00:00.000Z', '2026-12-15T09:00:00.000Z']],
  // 2026-05-31 is a Sunday: the last weekday of May 2026 is Friday the 29th.
  ['cron(0 9 LW * ? *)', '2026-05-01T00:00:00Z', ['2026-05-29T09:00:00.000Z', '2026-06-30T09:00:00.000Z']],
  // #: second Tuesday; L in day-of-week: last Friday.
  ['cron(0 10 ? * 3#2 *)', '2026-11-26T00:00:00Z', ['2026-12-08T10:00:00.000Z', '2027-01-12T10:00:00.000Z']],
  ['cron(0 10 ? * MON#1 *)', '2026-11-26T00:00:00Z', ['2026-12-07T10:00:00.000Z', '2027-01-04T10:00:00.000Z']],
  ['cron(15 10 ? * 6L *)', '2026-11-26T00:00:00Z', ['2026-11-27T10:15:00.000Z', '2026-12-25T10:15:00.000Z', '2027-01-29T10:15:00.000Z']],
  ['cron(0 0 ? * L *)', '2026-11-26T00:00:00Z', ['2026-11-28T00:00:00.000Z', '2026-12-05T00:00:00.000Z']],
  // Lists and ranges with steps in minutes and hours.
  [
    'cron(5,35 0-4/2 * * ? *)',
    '2026-11-26T00:06:00Z',
    [
      '2026-11-26T00:35:00.000Z',
      '2026-11-26T02:05:00.000Z',
      '2026-11-26T02:35:00.000Z',
      '2026-11-26T04:05:00.000Z',
      '2026-11-26T04:35:00.000Z',
      '2026-11-27T00:05:00.000Z',
    ],
  ],
  // Year boundary.
  ['cron(59 23 31 12 ? *)', '2026-12-31T23:59:00Z', ['2027-12-31T23:59:00.000Z']],
];

for (const [expr, from, expected] of NEXT) {
  test(`next: ${expr.trim()} after ${from}`, (t) => {
    const s = parseSchedule(expr);
    t.is(s.expression, expr.trim());
    const got: Array<string | null> = [];
    let cur = at(from);
    for (let i = 0; i < expected.length; i++) {
      const n = s.next(cur);
      got.push(iso(n));
      if (n === null) break;
      cur = n;
    }
    t.deepEqual(got, expected);
  });
}

test('next: a schedule that has no more ticks returns null', (t) => {
  t.is(parseSchedule('cron(0 0 1 1 ? 2020)').next(at('2026-01-01T00:00:00Z')), null);
  t.is(parseSchedule('cron(0 0 30 2 ? *)').next(at('2026-01-01T00:00:00Z')), null, '30 February never comes');
  t.is(iso(parseSchedule('cron(0 0 1 1 ? 2199)').next(at('2026-01-01T00:00:00Z'))), '2199-01-01T00:00:00.000Z');
});

test('latest: the last tick in a window, also across a long gap, or null', (t) => {
  const r = parseSchedule('rate(5 minutes)');
  t.is(iso(r.latest(at('2026-11-26T10:00:00Z'), at('2026-11-26T13:07:00Z'))), '2026-11-26T13:05:00.000Z');
  t.is(r.latest(at('2026-11-26T13:05:00Z'), at('2026-11-26T13:09:59Z')), null);
  const c = parseSchedule('cron(0 12 * * ? *)');
  t.is(iso(c.latest(at('2026-01-01T00:00:00Z'), at('2026-11-26T11:00:00Z'))), '2026-11-25T12:00:00.000Z');
  t.is(iso(c.latest(at('2026-11-25T11:00:00Z'), at('2026-11-25T12:00:00Z'))), '2026-11-25T12:00:00.000Z', 'the window end is inclusive');
  t.is(c.latest(at('2026-11-25T12:00:00Z'), at('2026-11-26T11:59:00Z')), null, 'the window start is exclusive');
  const yearly = parseSchedule('cron(0 0 1 1 ? *)');
  t.is(iso(yearly.latest(at('2020-06-01T00:00:00Z'), at('2026-11-26T00:00:00Z'))), '2026-01-01T00:00:00.000Z');
  const everyMinute = parseSchedule('cron(* * * * ? *)');
  t.is(iso(everyMinute.latest(at('2016-01-01T00:00:00Z'), at('2026-11-26T13:00:30Z'))), '2026-11-26T13:00:00.000Z');
});

/** [expression, message pattern] */
const INVALID: Array<[string, RegExp]> = [
  ['', /neither rate\(value unit\) nor cron/],
  ['every 5 minutes', /neither rate/],
  ['rate(5)', /rate: expected 'rate\(value unit\)'/],
  ['rate(0 minutes)', /rate: value '0' must be a whole number of at least 1/],
  ['rate(-5 minutes)', /rate: value '-5'/],
  ['rate(1.5 hours)', /rate: value '1.5'/],
  ['rate(1 minutes)', /rate: use 'minute' \(singular\) with the value 1/],
  ['rate(5 minute)', /rate: use 'minutes' \(plural\) with the value 5/],
  ['rate(2 weeks)', /rate: unit 'weeks' is not one of minute\(s\), hour\(s\), day\(s\)/],
  ['cron(0 12 * * ?)', /cron: expected 6 fields .* got 5/],
  ['cron(0 12 * * ? * *)', /got 7/],
  ['cron(60 * * * ? *)', /cron: minutes '60' out of range 0-59/],
  ['cron(0 24 * * ? *)', /cron: hours '24' out of range 0-23/],
  ['cron(0 0 32 * ? *)', /cron: day-of-month '32' out of range 1-31/],
  ['cron(0 0 0 * ? *)', /cron: day-of-month '0' out of range 1-31/],
  ['cron(0 0 ? 13 MON *)', /cron: month '13' out of range 1-12/],
  ['cron(0 12 ? * 8 *)', /cron: day-of-week '8' out of range 1-7/],
  ['cron(0 12 ? * 0 *)', /cron: day-of-week '0' out of range 1-7/],
  ['cron(0 0 1 1 ? 1969)', /cron: year '1969' out of range 1970-2199/],
  ['cron(0 12 * * * *)', /cron: day-of-month '\*' and day-of-week '\*' cannot both be set; use '\?' in one of them/],
  ['cron(0 12 1 * MON *)', /cannot both be set/],
  ['cron(0 12 ? * ? *)', /cron: day-of-month and day-of-week cannot both be '\?'/],
  ['cron(? 12 * * ? *)', /cron: '\?' is only allowed in day-of-month or day-of-week, not in minutes/],
  ['cron(0 12 * JUNE ? *)', /cron: month 'JUNE' is not a value \(1-12 or JAN-DEC\)/],
  ['cron(0 12 ? * FUNDAY *)', /cron: day-of-week/],
  ['cron(0 20-10 * * ? *)', /cron: hours range '20-10' runs backwards/],
  ['cron(0/0 * * * ? *)', /cron: minutes step '0' in '0\/0' must be a whole number of at least 1/],
  ['cron(0 12 1,,2 * ? *)', /cron: day-of-month '1,,2' has an empty list item/],
  ['cron(L * * * ? *)', /cron: minutes 'L': L, W and # are only allowed in day-of-month or day-of-week/],
  ['cron(0 0 ? * 2#6 *)', /cron: day-of-week '2#6': the week number after # must be 1-5/],
  ['cron(0 0 32W * ? *)', /cron: day-of-month '32' out of range 1-31/],
  ['cron(0 0 L-2 * ? *)', /cron: day-of-month 'L-2' is malformed/],
  ['cron(0 0 1-5-7 * ? *)', /cron: day-of-month range '1-5-7' is malformed/],
  [`rate(${'9'.repeat(300)} minutes)`, /longer than 256 characters/],
];

for (const [expr, message] of INVALID) {
  test(`invalid: ${JSON.stringify(expr.slice(0, 40))}`, (t) => {
    const err = t.throws(() => parseSchedule(expr));
    t.true(err instanceof HearthError);
    t.is((err as HearthError).code, 'BAD_REQUEST');
    t.regex(err.message, message);
  });
}
