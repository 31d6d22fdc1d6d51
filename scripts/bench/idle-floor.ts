/**
 * The floor under a start after an idle pause: a Unix-socket round trip from this process to an
 * echo process (one hop), and the same through a relay process in between (two hops, the shape of
 * Hearth's path: client → daemon → instance and back). Both are plain Node processes doing nothing
 * but copying bytes, so what a round trip after idleness costs on top of the back-to-back one is
 * wake-ups (halted vCPUs, cold caches), not work. Connections stay open, as the control client's do.
 */
import { spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { msSince } from './stats.js';

/** Bytes per round trip: about an invoke request's size on the instance's socket. */
const MESSAGE = Buffer.alloc(64, 0x61);

const ECHO = `require('net').createServer((c) => c.on('data', (d) => c.write(d))).listen(process.argv[1], () => process.stdout.write('up\\n'));`;
const RELAY = `const net = require('net');
net.createServer((c) => {
  const up = net.createConnection(process.argv[2]);
  c.on('data', (d) => up.write(d));
  up.on('data', (d) => c.write(d));
  c.on('close', () => up.destroy());
}).listen(process.argv[1], () => process.stdout.write('up\\n'));`;

class Pinger {
  private got = 0;
  private done: (() => void) | undefined;

  constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.got += d.length;
      if (this.got >= MESSAGE.length) this.done?.();
    });
    sock.on('error', () => undefined);
  }

  /** One round trip of MESSAGE, ms. */
  roundTrip(timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve, reject) => {
      this.got = 0;
      const t = setTimeout(() => reject(new Error('idle floor: no echo in time')), timeoutMs);
      const t0 = process.hrtime.bigint();
      this.done = () => {
        const ms = msSince(t0);
        clearTimeout(t);
        this.done = undefined;
        resolve(ms);
      };
      this.sock.write(MESSAGE);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

export class IdleFloor {
  private constructor(
    private readonly direct: Pinger,
    private readonly relayed: Pinger,
    private readonly undo: Array<() => Promise<void>>,
  ) {}

  /** Starts the echo and relay processes with their sockets in `dir`, and connects to both. */
  static async start(dir: string, cleanup: Cleanup): Promise<IdleFloor> {
    const undo: Array<() => Promise<void>> = [];
    try {
      const echoSock = join(dir, 'floor-echo.sock');
      const relaySock = join(dir, 'floor-relay.sock');
      undo.push(await startChild('floor echo', ECHO, [echoSock], cleanup));
      undo.push(await startChild('floor relay', RELAY, [relaySock, echoSock], cleanup));
      return new IdleFloor(new Pinger(await connect(echoSock)), new Pinger(await connect(relaySock)), undo);
    } catch (err) {
      for (const u of undo.reverse()) await u();
      throw err;
    }
  }

  /** One round trip to the echo process, ms. */
  oneHop(): Promise<number> {
    return this.direct.roundTrip();
  }

  /** One round trip through the relay to the echo process, ms. */
  relay(): Promise<number> {
    return this.relayed.roundTrip();
  }

  async stop(): Promise<void> {
    this.direct.close();
    this.relayed.close();
    for (const u of this.undo.reverse()) await u();
  }
}

async function startChild(name: string, code: string, args: string[], cleanup: Cleanup): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, ['-e', code, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: {} });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = cleanup.add(`${name} ${child.pid}`, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (c) => reject(new Error(`${name} exited with ${c}`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}
