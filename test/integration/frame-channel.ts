/** A test's view of an instance socket: framed JSON messages in order, requests answered in turn. */
import { encodeFrame, FrameDecoder } from '../../src/wire/frame.js';
import type { SandboxProcess } from '../../src/sandbox/sandbox-driver.js';

export class FrameChannel {
  private readonly queue: Record<string, unknown>[] = [];
  private readonly waiters: ((m: Record<string, unknown>) => void)[] = [];
  constructor(readonly proc: SandboxProcess) {
    const dec = new FrameDecoder((m) => {
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    proc.socket.on('data', (d: Buffer) => dec.push(d));
  }
  next(): Promise<Record<string, unknown>> {
    const m = this.queue.shift();
    return m ? Promise.resolve(m) : new Promise((r) => this.waiters.push(r));
  }
  async request(msg: object): Promise<Record<string, unknown>> {
    this.proc.socket.write(encodeFrame(msg));
    return this.next();
  }
}
