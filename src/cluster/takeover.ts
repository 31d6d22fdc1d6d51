/**
 * Events held by a dead host are taken back by the living ones without waiting for their leases
 * (the function's timeout plus a minute) to end: every `checkMs`, a host whose own heartbeats have
 * gone round without a gap for `afterMs` puts back the running events held by any host it has not
 * heard from for `afterMs` (queue.recoverHeldBy: failed and due now, the attempt counted; each is
 * a compare-and-set, so of several hosts doing it one wins, and a holder that was alive after all
 * keeps what it settled). The own-heartbeat condition keeps a host that was cut off from the
 * brokers (and so heard nobody) from taking the events of hosts that were alive all along.
 */
import type { RecoverResult } from '../queue/event-queue.js';
import type { ClusterLogger } from './jetstream-registry.js';

export interface TakeoverOptions {
  hostId: string;
  /** When a host's heartbeat was last heard here (HostDirectory.lastSeen). */
  lastSeen: (hostId: string) => number | undefined;
  recoverHeldBy: (gone: (holder: string) => boolean) => Promise<RecoverResult>;
  log: ClusterLogger;
  /** Silence after which a host counts as dead for this (default 10 s: the hosts bucket's max age). */
  afterMs?: number;
  checkMs?: number;
  /** A gap in this host's own heartbeats longer than this resets its own health (default 3 s). */
  gapMs?: number;
  now?: () => number;
}

export class HostTakeover {
  private timer: NodeJS.Timeout | undefined;
  private healthySince: number | undefined;
  private running = false;
  /** Events taken back so far (for /v1/health). */
  taken = 0;

  constructor(private readonly opts: TakeoverOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.opts.checkMs ?? 2000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One round (exported for tests). */
  async check(): Promise<void> {
    if (this.running) return;
    const now = (this.opts.now ?? Date.now)();
    const after = this.opts.afterMs ?? 10_000;
    const own = this.opts.lastSeen(this.opts.hostId);
    if (own === undefined || now - own > (this.opts.gapMs ?? 3000)) {
      this.healthySince = undefined;
      return;
    }
    this.healthySince ??= now;
    if (now - this.healthySince < after) return;
    this.running = true;
    try {
      const gone = new Set<string>();
      const r = await this.opts.recoverHeldBy((holder) => {
        const seen = this.opts.lastSeen(holder);
        const dead = seen === undefined || now - seen > after;
        if (dead) gone.add(holder);
        return dead;
      });
      const n = r.requeued.length + r.dead.length;
      if (n > 0) {
        this.taken += n;
        this.opts.log.warn(
          { hosts: [...gone], requeued: r.requeued.length, dead: r.dead.length },
          `took back ${n} running event(s) of host(s) silent for over ${after / 1000} s: ${[...gone].join(', ')}`,
        );
      }
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'taking back the events of silent hosts failed; trying again');
    } finally {
      this.running = false;
    }
  }
}
