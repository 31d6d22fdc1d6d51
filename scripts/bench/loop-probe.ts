/**
 * Bench only: how long the daemon's event loop is held by one piece of synchronous work, measured
 * inside the daemon process. Nothing in src/ knows about it: the benchmark starts its daemons with
 * `node --require dist/scripts/bench/loop-probe.js` and LOOP_PROBE_ENV set to a socket path
 * (DaemonProcess `loopProbe: true`); a daemon started any other way never loads this file.
 *
 * Until a window is opened it costs nothing: no timer, no hook enabled, only a listening Unix
 * socket (unref'd). Protocol, one line per command: `start` opens a window (answers `ok`),
 * `stop` closes it (answers one JSON `LoopWindow` line).
 *
 * In a window an async_hooks before/after pair times every outermost callback the loop runs (I/O,
 * timers, immediates, process.nextTick and promise continuations): `maxSpanMs` is the longest, the
 * time the loop could answer nothing else. A timer probe (or monitorEventLoopDelay) is coarser here:
 * libuv timers have 1 ms resolution, more than the 0.2 ms the target allows. Work outside a
 * callback (idle-time GC) is not seen; the hooks add ~1 µs to each callback while on, and enabling
 * them the first time deoptimizes promise code for the rest of the process's life, so a daemon with
 * the probe serves this measurement only (loop-block.ts).
 */
import { createHook } from 'node:async_hooks';
import { createConnection, createServer, type Socket } from 'node:net';

export const LOOP_PROBE_ENV = 'HEARTH_BENCH_LOOP_PROBE';

export interface LoopWindow {
  /** Length of the window, ms. */
  windowMs: number;
  /** The longest outermost callback, ms: how long the loop was blocked at most. */
  maxSpanMs: number;
  /** Sum of all callbacks' time, ms (the loop's busy time in the window). */
  busyMs: number;
  spans: number;
}

/** Listens on `socketPath` for probe windows; returns a function that stops listening. */
export function startLoopProbe(socketPath: string): () => void {
  let depth = 0;
  let t0 = 0n;
  let max = 0n;
  let busy = 0n;
  let spans = 0;
  let opened = 0n;
  const hook = createHook({
    before() {
      if (depth++ === 0) t0 = process.hrtime.bigint();
    },
    after() {
      // The callback that opened the window had no `before` in it: depth stays at 0.
      if (depth === 0 || --depth > 0) return;
      const d = process.hrtime.bigint() - t0;
      busy += d;
      spans++;
      if (d > max) max = d;
    },
  });
  const command = (line: string): string => {
    if (line === 'start') {
      hook.disable();
      depth = 0;
      max = busy = 0n;
      spans = 0;
      opened = process.hrtime.bigint();
      hook.enable();
      return 'ok';
    }
    if (line === 'stop') {
      hook.disable();
      const w: LoopWindow = { windowMs: Number(process.hrtime.bigint() - opened) / 1e6, maxSpanMs: Number(max) / 1e6, busyMs: Number(busy) / 1e6, spans };
      return JSON.stringify(w);
    }
    return JSON.stringify({ error: `unknown command ${line.slice(0, 40)}` });
  };
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (s: string) => {
      buf += s;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        conn.write(command(line) + '\n');
      }
    });
    conn.on('error', () => conn.destroy());
  });
  server.listen(socketPath);
  server.unref();
  return () => {
    hook.disable();
    server.close();
  };
}

/** The benchmark's side: opens and closes windows on a probe's socket. */
export class LoopProbeClient {
  private buf = '';
  private waiting: Array<(line: string) => void> = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => {
      this.buf += s;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.waiting.shift()?.(line);
      }
    });
  }

  static connect(socketPath: string): Promise<LoopProbeClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(socketPath);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        sock.on('error', () => undefined);
        resolve(new LoopProbeClient(sock));
      });
    });
  }

  private send(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.sock.destroyed) return reject(new Error('loop probe connection closed'));
      this.waiting.push(resolve);
      this.sock.write(cmd + '\n');
    });
  }

  async start(): Promise<void> {
    const r = await this.send('start');
    if (r !== 'ok') throw new Error(`loop probe: ${r}`);
  }

  async stop(): Promise<LoopWindow> {
    const w = JSON.parse(await this.send('stop')) as LoopWindow & { error?: string };
    if (w.error) throw new Error(`loop probe: ${w.error}`);
    return w;
  }

  close(): void {
    this.sock.destroy();
  }
}

// Preloaded into a benchmark's daemon (`--require`): listen when asked to.
const probeSocket = process.env[LOOP_PROBE_ENV];
if (probeSocket) startLoopProbe(probeSocket);
