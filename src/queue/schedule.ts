/**
 * Schedule expressions in the Amazon EventBridge forms, evaluated in UTC:
 *
 *   rate(1 minute) | rate(N minutes) | rate(1 hour) | rate(N hours) | rate(1 day) | rate(N days)
 *     The singular unit goes with 1 only, as AWS requires. Ticks are aligned to the Unix epoch
 *     (rate(5 minutes) fires at :00, :05, ...; rate(1 day) at 00:00 UTC), so they do not move when
 *     the daemon restarts.
 *
 *   cron(Minutes Hours Day-of-month Month Day-of-week Year)
 *     Minutes 0-59, Hours 0-23, Day-of-month 1-31, Month 1-12 or JAN-DEC, Day-of-week 1-7 or
 *     SUN-SAT (1 = Sunday), Year 1970-2199. Each field takes `*`, a value, a range `a-b`, a step
 *     `a/n`, `*` `/n` or `a-b/n`, and comma lists of these. Day-of-month also takes `L` (last day),
 *     `LW` (last weekday) and `nW` (weekday nearest day n, within the month); day-of-week takes `L`
 *     (Saturday, the last day of the week), `dL` (last day d of the month) and `d#k` (k-th day d
 *     of the month). One of day-of-month and day-of-week must be `?`, the other must not.
 *
 * A bad expression throws HearthError('BAD_REQUEST') whose message names the fault.
 */
import { HearthError } from '../errors.js';

export interface Schedule {
  /** The expression as given (trimmed): the schedule's identity. */
  readonly expression: string;
  readonly kind: 'rate' | 'cron';
  /** The first tick strictly after `afterMs` (ms since the epoch), or null if there is none. */
  next(afterMs: number): number | null;
  /** The latest tick in (afterMs, atOrBeforeMs], or null if there is none. */
  latest(afterMs: number, atOrBeforeMs: number): number | null;
}

const MINUTE = 60_000;
const MAX_EXPRESSION = 256;

export function parseSchedule(expr: string): Schedule {
  if (typeof expr !== 'string') throw bad(`schedule must be a string`);
  const e = expr.trim();
  if (e.length > MAX_EXPRESSION) throw bad(`schedule is longer than ${MAX_EXPRESSION} characters`);
  let m = /^rate\((.*)\)$/s.exec(e);
  if (m) return parseRate(e, m[1]);
  m = /^cron\((.*)\)$/s.exec(e);
  if (m) return parseCron(e, m[1]);
  throw bad(`schedule '${e}' is neither rate(value unit) nor cron(minutes hours day-of-month month day-of-week year)`);
}

function bad(msg: string): HearthError {
  return new HearthError('BAD_REQUEST', msg);
}

// ---- rate ---------------------------------------------------------------------------------------

const RATE_UNITS: Record<string, number> = { minute: MINUTE, hour: 60 * MINUTE, day: 24 * 60 * MINUTE };

function parseRate(expression: string, inner: string): Schedule {
  const parts = inner.trim().split(/\s+/).filter(Boolean);
  if (parts.length !== 2) throw bad(`rate: expected 'rate(value unit)', e.g. rate(5 minutes), got '${expression}'`);
  const [v, unit] = parts as [string, string];
  if (!/^\d+$/.test(v) || Number(v) < 1) throw bad(`rate: value '${v}' must be a whole number of at least 1`);
  const n = Number(v);
  const singular = unit.endsWith('s') ? unit.slice(0, -1) : unit;
  const per = RATE_UNITS[singular];
  if (per === undefined) throw bad(`rate: unit '${unit}' is not one of minute(s), hour(s), day(s)`);
  if (n === 1 && unit !== singular) throw bad(`rate: use '${singular}' (singular) with the value 1`);
  if (n !== 1 && unit === singular) throw bad(`rate: use '${singular}s' (plural) with the value ${n}`);
  const period = n * per;
  if (!Number.isSafeInteger(period)) throw bad(`rate: value '${v}' is too large`);
  return {
    expression,
    kind: 'rate',
    next: (after) => (Math.floor(after / period) + 1) * period,
    latest: (after, atOrBefore) => {
      const t = Math.floor(atOrBefore / period) * period;
      return t > after ? t : null;
    },
  };
}

// ---- cron ---------------------------------------------------------------------------------------

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const YEAR_MIN = 1970;
const YEAR_MAX = 2199;

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const F_MIN: FieldSpec = { name: 'minutes', min: 0, max: 59 };
const F_HOUR: FieldSpec = { name: 'hours', min: 0, max: 23 };
const F_DOM: FieldSpec = { name: 'day-of-month', min: 1, max: 31 };
const F_MON: FieldSpec = { name: 'month', min: 1, max: 12, names: MONTHS };
const F_DOW: FieldSpec = { name: 'day-of-week', min: 1, max: 7, names: DAYS };
const F_YEAR: FieldSpec = { name: 'year', min: YEAR_MIN, max: YEAR_MAX };

interface DomRule {
  days: boolean[];
  last: boolean;
  lastWeekday: boolean;
  nearestWeekday: number[];
}

interface DowRule {
  days: boolean[];
  nth: Array<[number, number]>;
  last: number[];
}

interface CronSpec {
  minutes: boolean[];
  hours: boolean[];
  months: boolean[];
  years: boolean[];
  dom: DomRule | null;
  dow: DowRule | null;
}

function parseValue(f: FieldSpec, tok: string, whole: string): number {
  let v: number;
  if (/^\d+$/.test(tok)) v = Number(tok);
  else {
    const i = f.names ? f.names.indexOf(tok.toUpperCase()) : -1;
    if (i < 0) {
      const hint = f.names ? ` or ${f.names[0]}-${f.names[f.names.length - 1]}` : '';
      throw bad(`cron: ${f.name} '${whole}' is not a value (${f.min}-${f.max}${hint})`);
    }
    v = i + 1;
  }
  if (v < f.min || v > f.max) throw bad(`cron: ${f.name} '${tok}' out of range ${f.min}-${f.max}`);
  return v;
}

/** `*`, `a`, `a-b`, with an optional `/step`; marks the set. */
function parseRangeItem(f: FieldSpec, item: string, set: boolean[], offset: number): void {
  const [rangePart, stepPart, extra] = item.split('/');
  if (extra !== undefined || rangePart === undefined || rangePart === '') throw bad(`cron: ${f.name} '${item}' is malformed`);
  let lo: number;
  let hi: number;
  if (rangePart === '*') {
    lo = f.min;
    hi = f.max;
  } else if (rangePart.includes('-')) {
    const [a, b, more] = rangePart.split('-');
    if (more !== undefined || !a || !b) throw bad(`cron: ${f.name} range '${item}' is malformed`);
    lo = parseValue(f, a, item);
    hi = parseValue(f, b, item);
    if (lo > hi) throw bad(`cron: ${f.name} range '${rangePart}' runs backwards; write it as a list of two ranges`);
  } else {
    lo = parseValue(f, rangePart, item);
    hi = stepPart === undefined ? lo : f.max;
  }
  let step = 1;
  if (stepPart !== undefined) {
    if (!/^\d+$/.test(stepPart) || Number(stepPart) < 1) throw bad(`cron: ${f.name} step '${stepPart}' in '${item}' must be a whole number of at least 1`);
    step = Number(stepPart);
  }
  for (let v = lo; v <= hi; v += step) set[v - offset] = true;
}

function parseSimpleField(f: FieldSpec, text: string): boolean[] {
  if (text === '?') throw bad(`cron: '?' is only allowed in day-of-month or day-of-week, not in ${f.name}`);
  const offset = f.name === 'year' ? YEAR_MIN : 0;
  const set: boolean[] = new Array<boolean>(f.max - offset + 1).fill(false);
  for (const item of text.split(',')) {
    if (item === '') throw bad(`cron: ${f.name} '${text}' has an empty list item`);
    if (/[LW#]/i.test(item) && !/^[A-Za-z]{3}/.test(item)) throw bad(`cron: ${f.name} '${item}': L, W and # are only allowed in day-of-month or day-of-week`);
    parseRangeItem(f, item, set, offset);
  }
  return set;
}

function parseDom(text: string): DomRule | null {
  if (text === '?') return null;
  const rule: DomRule = { days: new Array<boolean>(32).fill(false), last: false, lastWeekday: false, nearestWeekday: [] };
  for (const item of text.split(',')) {
    if (item === '') throw bad(`cron: day-of-month '${text}' has an empty list item`);
    const u = item.toUpperCase();
    if (u === 'L') rule.last = true;
    else if (u === 'LW') rule.lastWeekday = true;
    else if (/^\d+W$/.test(u)) rule.nearestWeekday.push(parseValue(F_DOM, u.slice(0, -1), item));
    else if (/[LW#?]/.test(u)) throw bad(`cron: day-of-month '${item}' is malformed (L, LW, nW are the special forms)`);
    else parseRangeItem(F_DOM, item, rule.days, 0);
  }
  return rule;
}

function parseDow(text: string): DowRule | null {
  if (text === '?') return null;
  const rule: DowRule = { days: new Array<boolean>(8).fill(false), nth: [], last: [] };
  for (const item of text.split(',')) {
    if (item === '') throw bad(`cron: day-of-week '${text}' has an empty list item`);
    const u = item.toUpperCase();
    if (u === 'L') {
      rule.days[7] = true;
    } else if (u.includes('#')) {
      const [d, k, more] = u.split('#');
      if (more !== undefined || !d || !k) throw bad(`cron: day-of-week '${item}' is malformed (expected day#n, e.g. MON#1)`);
      const day = parseValue(F_DOW, d, item);
      if (!/^\d+$/.test(k) || Number(k) < 1 || Number(k) > 5) throw bad(`cron: day-of-week '${item}': the week number after # must be 1-5`);
      rule.nth.push([day, Number(k)]);
    } else if (/^(\d+|[A-Z]{3})L$/.test(u)) {
      rule.last.push(parseValue(F_DOW, u.slice(0, -1), item));
    } else if (/[LW?]/.test(u.replace(/[A-Z]{3}/g, ''))) {
      throw bad(`cron: day-of-week '${item}' is malformed (L, dL, d#n are the special forms)`);
    } else {
      parseRangeItem(F_DOW, item, rule.days, 0);
    }
  }
  return rule;
}

function parseCron(expression: string, inner: string): Schedule {
  const fields = inner.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 6) {
    throw bad(`cron: expected 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length} in '${expression}'`);
  }
  const [mi, h, dom, mon, dow, yr] = fields as [string, string, string, string, string, string];
  const spec: CronSpec = {
    minutes: parseSimpleField(F_MIN, mi),
    hours: parseSimpleField(F_HOUR, h),
    dom: parseDom(dom),
    months: parseSimpleField(F_MON, mon),
    dow: parseDow(dow),
    years: parseSimpleField(F_YEAR, yr),
  };
  if (spec.dom === null && spec.dow === null) throw bad(`cron: day-of-month and day-of-week cannot both be '?'; set one of them`);
  if (spec.dom !== null && spec.dow !== null) {
    throw bad(`cron: day-of-month '${dom}' and day-of-week '${dow}' cannot both be set; use '?' in one of them`);
  }
  const next = (after: number): number | null => cronNext(spec, after);
  return {
    expression,
    kind: 'cron',
    next,
    latest: (after, atOrBefore) => {
      // Search backwards in widening windows so a long gap does not walk every tick.
      for (const w of [2 * 3600_000, 2 * 86400_000, 62 * 86400_000, 800 * 86400_000, Infinity]) {
        const from = Math.max(after, atOrBefore - w);
        const first = next(from);
        if (first === null || first > atOrBefore) {
          if (from === after) return null;
          continue;
        }
        let last = first;
        for (let t = next(first); t !== null && t <= atOrBefore; t = next(t)) last = t;
        return last;
      }
      return null;
    },
  };
}

function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate(); // m is 1-based: day 0 of the next month
}

/** 1 = Sunday ... 7 = Saturday. */
function weekday(y: number, m: number, d: number): number {
  return new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 1;
}

function nearestWeekday(y: number, m: number, n: number): number | null {
  const last = daysInMonth(y, m);
  if (n > last) return null;
  const wd = weekday(y, m, n);
  if (wd === 7) return n === 1 ? 3 : n - 1; // Saturday: Friday before, or Monday after the 1st
  if (wd === 1) return n === last ? n - 2 : n + 1; // Sunday: Monday after, or Friday before the last
  return n;
}

function dayMatches(s: CronSpec, y: number, m: number, d: number): boolean {
  if (s.dom) {
    const r = s.dom;
    if (r.days[d]) return true;
    const last = daysInMonth(y, m);
    if (r.last && d === last) return true;
    if (r.lastWeekday && d === nearestWeekday(y, m, last)) return true;
    for (const n of r.nearestWeekday) if (nearestWeekday(y, m, n) === d) return true;
    return false;
  }
  const r = s.dow!;
  const wd = weekday(y, m, d);
  if (r.days[wd]) return true;
  for (const [day, k] of r.nth) if (day === wd && Math.ceil(d / 7) === k) return true;
  for (const day of r.last) if (day === wd && d + 7 > daysInMonth(y, m)) return true;
  return false;
}

function firstFrom(set: boolean[], from: number): number {
  for (let i = from; i < set.length; i++) if (set[i]) return i;
  return -1;
}

function cronNext(s: CronSpec, after: number): number | null {
  let t = Math.floor(after / MINUTE) * MINUTE + MINUTE;
  // Each pass moves t to the next candidate year, month, day, hour or minute; bounded by the
  // number of days up to YEAR_MAX for expressions that never match (e.g. 30 February).
  for (let guard = 0; guard < 200_000; guard++) {
    const d = new Date(t);
    const y = d.getUTCFullYear();
    if (y > YEAR_MAX) return null;
    if (y < YEAR_MIN) {
      t = Date.UTC(YEAR_MIN, 0, 1);
      continue;
    }
    if (!s.years[y - YEAR_MIN]) {
      const ny = firstFrom(s.years, y - YEAR_MIN + 1);
      if (ny < 0) return null;
      t = Date.UTC(ny + YEAR_MIN, 0, 1);
      continue;
    }
    const mo = d.getUTCMonth() + 1;
    if (!s.months[mo]) {
      t = Date.UTC(y, mo, 1); // first of the next month
      continue;
    }
    const day = d.getUTCDate();
    if (!dayMatches(s, y, mo, day)) {
      t = Date.UTC(y, mo - 1, day + 1);
      continue;
    }
    const h = d.getUTCHours();
    const nh = firstFrom(s.hours, h);
    if (nh < 0) {
      t = Date.UTC(y, mo - 1, day + 1);
      continue;
    }
    if (nh > h) return Date.UTC(y, mo - 1, day, nh, firstFrom(s.minutes, 0));
    const nm = firstFrom(s.minutes, d.getUTCMinutes());
    if (nm < 0) {
      t = Date.UTC(y, mo - 1, day, h + 1);
      continue;
    }
    return Date.UTC(y, mo - 1, day, h, nm);
  }
  return null;
}
