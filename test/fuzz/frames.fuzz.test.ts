/**
 * Fuzzing the shim wire protocol both ways (src/wire/frame.ts; the shims' decoders
 * src/runtimes/node/frames.js and python/_hearth_frames.py). Properties: any message list, framed
 * and cut into arbitrary chunks, decodes to the same list in every decoder; arbitrary bytes make
 * the daemon's decoder deliver messages or throw ProtocolError (never anything else, never grow
 * past one frame), the Node shim's reader deliver or exit(2), the Python shim's reader deliver,
 * raise ValueError or stop at EOF.
 */
import test from 'ava';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { encodeFrame, FrameDecoder, ProtocolError } from '../../src/wire/frame.js';
import { corpus, params } from './fuzz-config.js';

const RUNTIMES = path.join(__dirname, '..', '..', '..', 'src', 'runtimes');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const shimFrames = require(path.join(RUNTIMES, 'node', 'frames.js')) as {
  encodeFrame(json: string): Buffer;
  frameReader(onMessage: (m: unknown) => void): (chunk: Buffer) => void;
};

const json = fc.jsonValue({ maxDepth: 3 });
const message = fc.record({ t: fc.string({ maxLength: 10 }), v: json }, { requiredKeys: ['t'] });
const messages = fc.array(message, { maxLength: 8 });

function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    out.push(bytes.subarray(at, c));
    at = c;
  }
  out.push(bytes.subarray(at));
  return out;
}

const framedWithCuts = messages.chain((ms) => {
  const bytes = Buffer.concat(ms.map((m) => encodeFrame(m)));
  return fc.tuple(fc.constant(ms), fc.constant(bytes), fc.array(fc.nat(bytes.length), { maxLength: 10 }));
});

/** Runs the Node shim's reader over chunks; process.exit(2) becomes a thrown marker. */
function shimDecode(chunks: Buffer[]): { messages: unknown[]; exited: boolean } {
  const out: unknown[] = [];
  const realExit = process.exit.bind(process);
  const marker = new Error('exit(2)');
  process.exit = ((code?: number) => {
    if (code === 2) throw marker;
    realExit(code);
  }) as typeof process.exit;
  try {
    const read = shimFrames.frameReader((m) => out.push(m));
    for (const c of chunks) read(c);
    return { messages: out, exited: false };
  } catch (e) {
    if (e === marker) return { messages: out, exited: true };
    throw e;
  } finally {
    process.exit = realExit;
  }
}

test('daemon decoder and Node shim reader: framed messages in any chunking decode to the same messages, both ways', (t) => {
  fc.assert(
    fc.property(framedWithCuts, ([ms, bytes, cuts]) => {
      const got: unknown[] = [];
      const d = new FrameDecoder((m) => got.push(m));
      for (const c of cut(bytes, cuts)) d.push(c);
      if (JSON.stringify(got) !== JSON.stringify(ms)) throw new Error('daemon decoder changed the messages');
      if (d.bufferedBytes !== 0) throw new Error('bytes left over');
      // the shim's writer, read back by the daemon's decoder
      const shimBytes = Buffer.concat(ms.map((m) => shimFrames.encodeFrame(JSON.stringify(m))));
      const back: unknown[] = [];
      const d2 = new FrameDecoder((m) => back.push(m));
      for (const c of cut(shimBytes, cuts)) d2.push(c);
      if (JSON.stringify(back) !== JSON.stringify(ms)) throw new Error('shim frames decoded differently');
      const r = shimDecode(cut(bytes, cuts));
      if (r.exited || JSON.stringify(r.messages) !== JSON.stringify(ms)) throw new Error('Node shim reader changed the messages');
    }),
    params('frames-roundtrip', 300),
  );
  t.pass();
});

/** Garbage: random bytes, or frames with a random header or body. */
const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.nat(), fc.uint8Array({ maxLength: 64 })).map(([n, body]) => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(n % 2 === 0 ? n : body.length, 0);
    return Buffer.concat([h, Buffer.from(body)]);
  }),
  fc.string({ maxLength: 40 }).map((s) => {
    const b = Buffer.from(s);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length, 0);
    return Buffer.concat([h, b]);
  }),
);

function checkDaemonDecoder(bytes: Buffer, cuts: number[]): void {
  const d = new FrameDecoder(() => {}, 1024);
  try {
    for (const c of cut(bytes, cuts)) d.push(c);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw new Error(`FrameDecoder threw ${(e as Error).constructor.name}: ${(e as Error).message}`, { cause: e });
    return;
  }
  if (d.bufferedBytes > 1024 + 4) throw new Error(`buffered ${d.bufferedBytes} bytes past one frame`);
}

test('daemon decoder and Node shim reader: hostile bytes only ever give ProtocolError / exit(2) (corpus, then generated)', (t) => {
  for (const c of corpus('frames')) {
    checkDaemonDecoder(c.data, []);
    shimDecode([c.data]);
  }
  fc.assert(
    fc.property(
      fc.array(hostile, { minLength: 1, maxLength: 4 }).map((a) => Buffer.concat(a)),
      fc.array(fc.nat(400), { maxLength: 6 }),
      (bytes, cuts) => {
        checkDaemonDecoder(
          bytes,
          cuts.filter((c) => c <= bytes.length),
        );
        shimDecode(
          cut(
            bytes,
            cuts.filter((c) => c <= bytes.length),
          ),
        );
      },
    ),
    params('frames-hostile', 800),
  );
  t.pass();
});

/** Feeds `input` to the Python shim's Channel on a pipe; returns its report (messages read back, or the error). */
function pythonChannel(input: Buffer): { messages?: unknown[]; error?: string } {
  const script = `
import json, os, sys
sys.path.insert(0, ${JSON.stringify(path.join(RUNTIMES, 'python'))})
import _hearth_frames as f
ch = f.Channel(0)
out = []
try:
    while True:
        m = ch.recv()
        if m is None:
            break
        out.append(m)
    sys.stdout.write(json.dumps({"messages": out}))
except (ValueError, UnicodeDecodeError) as e:
    sys.stdout.write(json.dumps({"error": type(e).__name__}))
`;
  const r = spawnSync('/usr/bin/python3', ['-I', '-S', '-c', script], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`python exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as { messages?: unknown[]; error?: string };
}

test('Python shim reader: framed messages decode unchanged; hostile bytes raise ValueError or end at EOF (batched per run)', (t) => {
  t.timeout(120_000);
  fc.assert(
    fc.property(messages, (ms) => {
      const r = pythonChannel(Buffer.concat(ms.map((m) => encodeFrame(m))));
      if (JSON.stringify(r.messages) !== JSON.stringify(ms)) throw new Error(`python decoded ${JSON.stringify(r)}`);
    }),
    params('frames-python', 12, 0.02),
  );
  fc.assert(
    fc.property(hostile, (bytes) => {
      pythonChannel(bytes);
    }),
    params('frames-python-hostile', 12, 0.02),
  );
  t.pass();
});
