/**
 * The daemon's link to the NATS JetStream brokers (`hearth daemon --nats URL[,URL...]`). It
 * connects in the background and keeps trying while no broker answers, saying so in the log; the
 * stores built on it (registry, code store, hosts, schedule lease) attach when it first connects.
 * Once connected, nats.js reconnects by itself for as long as the daemon runs; `connected` says
 * whether the link is up right now (what `/v1/health` reports as readiness).
 *
 * Life: construct → `start()` (resolves when connected or after `firstWaitMs`, never throws for
 * an unreachable broker) → `stop()` (drains and closes; safe after a failed or missing start).
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';

export interface ClusterConnectionOptions {
  servers: readonly string[];
  /** This host's id in the cluster (`--host-id`). */
  hostId: string;
  log: Logger;
  /** How long `start()` waits for the first connection before letting the daemon go on (default 3 s). */
  firstWaitMs?: number;
  /** Pause between connection attempts while no broker answers (default 1 s). */
  retryMs?: number;
}

export type ReadyListener = (nc: NatsConnection) => void | Promise<void>;

export class ClusterConnection {
  private nc: NatsConnection | undefined;
  private up = false;
  private stopped = false;
  private attempts = 0;
  private lastError: string | undefined;
  private readonly listeners: ReadyListener[] = [];
  private readonly ready: Promise<NatsConnection>;
  private resolveReady!: (nc: NatsConnection) => void;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: ClusterConnectionOptions) {
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
  }

  get hostId(): string {
    return this.opts.hostId;
  }

  get servers(): readonly string[] {
    return this.opts.servers;
  }

  /** The connection once made (it may be reconnecting), else undefined. */
  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** Whether the link to a broker is up right now. */
  get connected(): boolean {
    return this.up;
  }

  /** What `/v1/health` shows of the broker link. */
  status(): { servers: readonly string[]; hostId: string; connected: boolean; server?: string; error?: string } {
    return {
      servers: this.opts.servers,
      hostId: this.opts.hostId,
      connected: this.up,
      ...(this.nc && this.up ? { server: this.nc.getServer() } : {}),
      ...(!this.up && this.lastError ? { error: this.lastError } : {}),
    };
  }

  /** The connection, or UNAVAILABLE naming the brokers when none was ever made. */
  require(what: string): NatsConnection {
    if (!this.nc) throw new HearthError('UNAVAILABLE', `${what}: not connected to the NATS broker (${this.opts.servers.join(', ')}); retrying`);
    return this.nc;
  }

  /** Resolves with the connection once it is first made. */
  whenReady(): Promise<NatsConnection> {
    return this.ready;
  }

  /** Runs `fn` once connected (now, when already connected). Errors are logged. */
  onReady(fn: ReadyListener): void {
    this.listeners.push(fn);
    if (this.nc) this.callListener(fn, this.nc);
  }

  async start(): Promise<void> {
    this.loop = this.connectLoop();
    const wait = this.opts.firstWaitMs ?? 3000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ready, new Promise<void>((r) => (timer = setTimeout(r, wait)))]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    const nc = this.nc;
    this.nc = undefined;
    this.up = false;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }

  private async connectLoop(): Promise<void> {
    const { log, servers } = this.opts;
    while (!this.stopped) {
      this.attempts++;
      try {
        const nc = await connect({
          servers: [...servers],
          name: `hearth ${this.opts.hostId}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          reconnectJitter: 100,
          timeout: 2000,
          pingInterval: 2000,
          maxPingOut: 2,
        });
        if (this.stopped) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.up = true;
        this.lastError = undefined;
        log.info({ server: nc.getServer(), hostId: this.opts.hostId, attempts: this.attempts }, 'connected to the NATS broker');
        void this.followStatus(nc);
        this.resolveReady(nc);
        for (const fn of this.listeners) this.callListener(fn, nc);
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
        // Said clearly the first time, then every 30th attempt, so the log stays readable.
        if (this.attempts === 1 || this.attempts % 30 === 0) {
          log.error(
            { servers, attempts: this.attempts, err: this.lastError },
            `cannot reach the NATS broker at ${servers.join(', ')}: ${this.lastError}; retrying every ${this.opts.retryMs ?? 1000} ms`,
          );
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.opts.retryMs ?? 1000);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    }
  }

  private async followStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.up = false;
        this.lastError = 'disconnected';
        this.opts.log.warn({ server: s.server }, 'lost the NATS broker; reconnecting (cached functions keep running)');
      } else if (s.type === 'reconnect') {
        this.up = true;
        this.lastError = undefined;
        this.opts.log.info({ server: s.server }, 'reconnected to the NATS broker');
      }
    }
  }

  private callListener(fn: ReadyListener, nc: NatsConnection): void {
    void (async () => {
      try {
        await fn(nc);
      } catch (err) {
        this.opts.log.error({ err }, 'attaching to the NATS broker failed');
      }
    })();
  }
}
