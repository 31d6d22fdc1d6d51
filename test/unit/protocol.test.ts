import test from 'ava';
import { encodeInvokeFrame } from '../../src/runtimes/protocol.js';
import { encodeFrame, FrameDecoder, ProtocolError } from '../../src/wire/frame.js';

function decodeAll(chunks: Buffer[], max?: number): unknown[] {
  const out: unknown[] = [];
  const d = new FrameDecoder((m) => out.push(m), max);
  for (const c of chunks) d.push(c);
  return out;
}

function split(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

test('a frame is a 4-byte big-endian length then UTF-8 JSON', (t) => {
  const f = encodeFrame({ t: 'ready', runtime: 'node', pid: 1, s: 'é' });
  const body = JSON.stringify({ t: 'ready', runtime: 'node', pid: 1, s: 'é' });
  t.is(f.readUInt32BE(0), Buffer.byteLength(body));
  t.is(f.subarray(4).toString('utf8'), body);
});

const messages = [
  { t: 'ready', runtime: 'python', pid: 7 },
  { t: 'result', id: 'a', result: { s: 'x'.repeat(100_000), u: 'ünïcødé ✓ 🎉' }, logs: 'l', durationMs: 1.5 },
  { t: 'specialized', initMs: 0.25 },
];
const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));

for (const size of [1, 3, 4, 5, 7, 1000, 65536, stream.length]) {
  test(`decodes frames split into ${size}-byte chunks`, (t) => {
    t.deepEqual(decodeAll(split(stream, size)), messages);
  });
}

test('decodes frames coalesced into one chunk and keeps a trailing partial frame', (t) => {
  const extra = encodeFrame({ t: 'x' });
  const out: unknown[] = [];
  const d = new FrameDecoder((m) => out.push(m));
  d.push(Buffer.concat([stream, extra.subarray(0, 6)]));
  t.deepEqual(out, messages);
  t.is(d.bufferedBytes, 6);
  d.push(extra.subarray(6));
  t.deepEqual(out, [...messages, { t: 'x' }]);
  t.is(d.bufferedBytes, 0);
});

test('a frame header above the limit is a protocol error, and the decoder stays failed', (t) => {
  const d = new FrameDecoder(() => t.fail('no message expected'), 1024);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025, 0);
  const e = t.throws(() => d.push(header), { instanceOf: ProtocolError });
  t.is(e?.reason, 'FRAME_TOO_LARGE');
  t.is(e?.code, 'PROTOCOL_ERROR');
  t.throws(() => d.push(encodeFrame({ t: 'ready' })), { instanceOf: ProtocolError });
});

test('the encoder refuses a frame above the limit', (t) => {
  const e = t.throws(() => encodeFrame({ t: 'x', s: 'y'.repeat(2000) }, 1024), { instanceOf: ProtocolError });
  t.is(e?.reason, 'FRAME_TOO_LARGE');
});

for (const [name, body] of [
  ['invalid JSON', '{"t":'],
  ['a JSON array', '[1,2]'],
  ['an object without t', '{"x":1}'],
  ['a non-string t', '{"t":5}'],
  ['an empty body', ''],
  ['null', 'null'],
] as const) {
  test(`a frame holding ${name} is a protocol error; earlier frames are still delivered`, (t) => {
    const b = Buffer.from(body);
    const bad = Buffer.alloc(4 + b.length);
    bad.writeUInt32BE(b.length, 0);
    b.copy(bad, 4);
    const out: unknown[] = [];
    const d = new FrameDecoder((m) => out.push(m));
    const e = t.throws(() => d.push(Buffer.concat([encodeFrame({ t: 'first' }), bad])), { instanceOf: ProtocolError });
    t.is(e?.reason, 'BAD_FRAME');
    t.deepEqual(out, [{ t: 'first' }]);
  });
}

test('encodeInvokeFrame splices raw event JSON', (t) => {
  const f = encodeInvokeFrame('id-1', '{"a":[1,2,{"b":null}]}', 1234);
  t.deepEqual(decodeAll([f]), [{ t: 'invoke', id: 'id-1', deadline: 1234, event: { a: [1, 2, { b: null }] } }]);
});
