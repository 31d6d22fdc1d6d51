import test from 'ava';
import { Admission } from '../../src/pool/admission.js';

const tick = () => new Promise((r) => setImmediate(r));

/** Admits and records, in order, which callers got a slot. */
function tracker(adm: Admission, key = 'f@1', limit = 2) {
  const got: string[] = [];
  const admit = (tag: string, priority: 'sync' | 'async' = 'sync') => adm.admit(key, limit, priority).then(() => void got.push(tag));
  return { got, admit };
}

test('callers within the limit are admitted at once; past it they wait for a slot', async (t) => {
  const adm = new Admission();
  const { got, admit } = tracker(adm);
  void admit('a');
  void admit('b');
  void admit('c');
  await tick();
  t.deepEqual(got, ['a', 'b']);
  adm.leave('f@1');
  await tick();
  t.deepEqual(got, ['a', 'b', 'c']);
});

test('limits are per key: a full function does not hold back another', async (t) => {
  const adm = new Admission();
  const f = tracker(adm, 'f@1', 1);
  const g = tracker(adm, 'g@1', 1);
  void f.admit('f1');
  void f.admit('f2');
  void g.admit('g1');
  await tick();
  t.deepEqual(f.got, ['f1']);
  t.deepEqual(g.got, ['g1']);
});

test('waiters are served in FIFO order, synchronous callers ahead of queued events', async (t) => {
  const adm = new Admission();
  const { got, admit } = tracker(adm, 'f@1', 1);
  void admit('first');
  void admit('async1', 'async');
  void admit('async2', 'async');
  void admit('sync1', 'sync');
  void admit('sync2', 'sync');
  await tick();
  for (let i = 0; i < 4; i++) {
    adm.leave('f@1');
    await tick();
  }
  t.deepEqual(got, ['first', 'sync1', 'sync2', 'async1', 'async2']);
});

test('a freed slot passes to the waiter, never to a newcomer', async (t) => {
  const adm = new Admission();
  const { got, admit } = tracker(adm, 'f@1', 1);
  void admit('first');
  void admit('waiting');
  await tick();
  adm.leave('f@1');
  void admit('newcomer');
  await tick();
  t.deepEqual(got, ['first', 'waiting']);
  adm.leave('f@1');
  await tick();
  t.deepEqual(got, ['first', 'waiting', 'newcomer']);
});

test('rejectAll rejects every waiter; slots held stay held', async (t) => {
  const adm = new Admission();
  const { got, admit } = tracker(adm, 'f@1', 1);
  void admit('held');
  const waiting = admit('waiting');
  await tick();
  adm.rejectAll(new Error('stopping'));
  await t.throwsAsync(waiting, { message: 'stopping' });
  void admit('later');
  await tick();
  t.deepEqual(got, ['held'], 'the slot is still held by the first caller');
});

test('tryAdmit takes a free slot at once, and refuses (taking nothing) when the key is full or has waiters', async (t) => {
  const adm = new Admission();
  t.true(adm.tryAdmit('f@1', 1));
  t.false(adm.tryAdmit('f@1', 1));
  const { got, admit } = tracker(adm, 'f@1', 1);
  void admit('waiter');
  adm.leave('f@1');
  await tick();
  t.deepEqual(got, ['waiter'], 'the slot passed to the waiter');
  t.false(adm.tryAdmit('f@1', 1));
  adm.leave('f@1');
  t.true(adm.tryAdmit('f@1', 1), 'free again after the waiter left');
});
