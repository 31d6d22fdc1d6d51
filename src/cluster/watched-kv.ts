/**
 * A local mirror of a JetStream KV bucket kept by a KV watch, whose initial load ends on a write
 * of its own: the event queue (jetstream-queue-kv.ts), the function registry and the network
 * definitions load and follow their buckets through it.
 *
 * Why a write of its own (issue 14): a watch is an ephemeral consumer that JetStream may place on
 * any replica of the stream, and a replica restarted a moment ago (a broker killed with -9) says it
 * is current while it has not yet applied the last writes. A load that ended on the count of
 * entries that consumer announced started with acknowledged entries missing (1,995 of 2,000 events,
 * the rest came 1-2 s later). So `start` first writes `loadKey`; the stream's leader acknowledges
 * it after everything acknowledged before, the watch delivers in stream order, and the load ends
 * when the watch has delivered that revision.
 *
 * KvMirror below is the registry's and the network definitions' use of it: attach when the broker
 * is first reached, load, then follow.
 *
 * The watch is an ordered consumer on one broker; when that broker dies the client library notices
 * only after a minute of missed heartbeats. Every WATCHDOG_MS the bucket's last revision is
 * compared with the watch's: behind on two checks in a row with no progress, the watch is
 * restarted from where it stopped (as it is after any error).
 */
import { jetstreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { brokerError, ensureKv, TRANSIENT_BROKER, type BucketLogger, type KvSpec } from './buckets.js';
import type { ClusterConnection } from './connection.js';

export interface WatchedKvOptions {
  /** Written by each host as it starts loading; never passed to `onEntry`. */
  loadKey: string;
  /** Every entry the watch delivers (the initial values, then every change), in stream order. */
  onEntry: (e: KvEntry) => void;
  /** Runs a broker request, again through elections and reconnects as the owner's policy says. */
  retry: <T>(what: string, op: () => Promise<T>) => Promise<T>;
  /** False while the connection is down (the watchdog then waits). */
  isOnline: () => boolean;
  /** True for a refusal of the load key's write because the bucket is full (see loadTarget). */
  isFull?: (err: unknown) => boolean;
}

const WATCHDOG_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class WatchedKv {
  private watchIter: (AsyncIterable<KvEntry> & { stop(): void }) | undefined;
  private lastWatchRev = 0;
  private stopped = false;
  private watchLoop: Promise<void> = Promise.resolve();
  private lagSince = -1;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly opts: WatchedKvOptions,
  ) {}

  /** Starts the watch; resolves when it has delivered everything acknowledged before the call. */
  async start(): Promise<void> {
    const through = await this.loadTarget();
    let loaded!: () => void;
    const ready = new Promise<void>((r) => (loaded = r));
    if (through === 0) loaded();
    this.watchLoop = this.runWatch(through, loaded);
    await ready;
  }

  /** Stops the watch (idempotent; before `start`, `start` then ends at once); resolves when its loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watchIter?.stop();
    await this.watchLoop.catch(() => undefined);
  }

  /**
   * The revision the initial load must reach: that of a write to the load key. A full bucket
   * refuses the write; then the stream's last sequence (from its leader), or, when that message is
   * gone (a compacted delete marker), whatever the watch's consumer announces (Infinity: see runWatch).
   */
  private async loadTarget(): Promise<number> {
    try {
      return await this.opts.retry('mark the start of the load', () => this.kv.put(this.opts.loadKey, JSON.stringify({ at: Date.now() })));
    } catch (e) {
      if (!this.opts.isFull?.(e)) throw e;
    }
    const status = await this.opts.retry('read the bucket', () => this.kv.status());
    const last = status.streamInfo.state.last_seq;
    if (last === 0 || status.values === 0) return 0;
    const there = await this.opts
      .retry('read the bucket', () => jetstreamManager(this.nc).then((jsm) => jsm.streams.getMessage(status.streamInfo.config.name, { seq: last })))
      .catch(() => null);
    return there ? last : Infinity;
  }

  private async runWatch(loadedThrough: number, loaded: () => void): Promise<void> {
    let done = false;
    const markLoaded = (rev: number): void => {
      if (!done && rev >= loadedThrough) {
        done = true;
        loaded();
      }
    };
    // Only without a revision to reach (see loadTarget) does the consumer's own count decide.
    const trustCount = loadedThrough === Infinity;
    const dog = setInterval(() => void this.watchdog(), WATCHDOG_MS);
    dog.unref();
    while (!this.stopped) {
      try {
        const it = await this.kv.watch({ key: '>', ...(this.lastWatchRev > 0 ? { resumeFromRevision: this.lastWatchRev + 1 } : {}) });
        this.watchIter = it as never;
        if (this.stopped) it.stop();
        for await (const e of it) {
          this.lastWatchRev = Math.max(this.lastWatchRev, e.revision);
          if (e.key !== this.opts.loadKey) this.opts.onEntry(e);
          // The client marks the last of the initial values (and everything after) as updates.
          markLoaded(trustCount && e.isUpdate ? Infinity : e.revision);
        }
      } catch {
        // The watch consumer was lost (its broker went away): resume after what we have.
      }
      if (!this.stopped) await sleep(200);
    }
    clearInterval(dog);
    markLoaded(Infinity);
  }

  private async watchdog(): Promise<void> {
    if (this.stopped || !this.opts.isOnline()) return;
    try {
      const last = (await this.kv.status()).streamInfo.state.last_seq;
      if (last <= this.lastWatchRev) {
        this.lagSince = -1;
      } else if (this.lagSince === this.lastWatchRev) {
        this.lagSince = -1;
        this.watchIter?.stop();
      } else {
        this.lagSince = this.lastWatchRev;
      }
    } catch {
      // broker busy or electing: next round
    }
  }
}

/** Runs `op` again after transient broker failures (leader election, reconnect) for up to `windowMs`. */
export async function retryTransient<T>(op: () => Promise<T>, windowMs = 10_000): Promise<T> {
  const until = Date.now() + windowMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (!TRANSIENT_BROKER.test(String((e as Error)?.message ?? e)) || Date.now() > until) throw e;
      await sleep(Math.min(500, 50 * 2 ** Math.min(attempt, 4)));
    }
  }
}

export interface KvMirrorOptions {
  connection: Pick<ClusterConnection, 'connection' | 'onReady'>;
  /** The bucket, given the connection (its default replica count depends on it). */
  spec: (nc: NatsConnection) => KvSpec;
  log: BucketLogger;
  /** See WatchedKvOptions.onEntry: the initial values, then every change, in stream order. */
  onEntry: (e: KvEntry) => void;
  /** Called when the load is complete, before `kv` is set (writes become possible). */
  onLoaded: () => Promise<void> | void;
}

/** Key written by a host as it starts loading a registry or networks bucket: not a valid function or network name. */
export const MIRROR_LOAD_KEY = 'hearth.load';

/**
 * A bucket of the function registry or the network definitions, loaded and followed through a
 * WatchedKv once the broker is first reached (at `start`, or when the connection comes).
 */
export class KvMirror {
  /** Set once the load is complete. */
  kv: KV | undefined;
  private watch: WatchedKv | undefined;
  private attaching: Promise<void> | undefined;
  private started = false;

  constructor(private readonly opts: KvMirrorOptions) {}

  async start(): Promise<void> {
    this.started = true;
    const nc = this.opts.connection.connection;
    if (nc) await this.attach(nc);
    else this.opts.connection.onReady((c) => this.attach(c));
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.watch?.stop(); // ends a load in progress
    await this.attaching?.catch(() => undefined);
    await this.watch?.stop();
    this.watch = undefined;
    this.attaching = undefined;
    this.kv = undefined;
  }

  private attach(nc: NatsConnection): Promise<void> {
    if (!this.attaching) {
      this.attaching = this.load(nc).catch((err: unknown) => {
        this.attaching = undefined;
        throw err;
      });
    }
    return this.attaching;
  }

  private async load(nc: NatsConnection): Promise<void> {
    const spec = this.opts.spec(nc);
    const kv = await ensureKv(nc, spec, this.opts.log);
    if (!this.started) return;
    const watch = new WatchedKv(nc, kv, {
      loadKey: MIRROR_LOAD_KEY,
      onEntry: this.opts.onEntry,
      retry: (what, op) => retryTransient(op).catch((err: unknown) => Promise.reject(brokerError(err, `${spec.name}: cannot ${what}`))),
      isOnline: () => !nc.isClosed(),
    });
    this.watch = watch;
    await watch.start();
    if (!this.started) return;
    await this.opts.onLoaded();
    this.kv = kv;
  }
}
