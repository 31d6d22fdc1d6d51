/** asError (src/errors.ts): what a caught value becomes when it must be rejected or thrown as an Error. */
import test from 'ava';
import { asError, HearthError } from '../../src/errors.js';

test('an Error is passed on as it is', (t) => {
  const e = new HearthError('CONFLICT', 'taken');
  t.is(asError(e), e);
});

test('a thrown string becomes the message; another value is described and kept as cause', (t) => {
  t.is(asError('boom').message, 'boom');
  const e = asError({ code: 7 });
  t.true(e instanceof Error);
  t.regex(e.message, /code: 7/);
  t.deepEqual(e.cause, { code: 7 });
});
