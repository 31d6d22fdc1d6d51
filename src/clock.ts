/** Injected time, like tailscale's tstime.Clock: components never read Date.now() directly. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** A clock tests advance by hand; timers fire in deadline order inside `advance`. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { id } as TimerHandle;
  }
  clearTimeout(handle: TimerHandle): void {
    this.timers.delete((handle as { id: number }).id);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/**
 * Time that runs `factor` times faster than the system clock from the moment it is made: for
 * replaying hours of arrival patterns through the real pool policy in minutes.
 */
export class ScaledClock implements Clock {
  private readonly origin = Date.now();
  constructor(readonly factor: number) {
    if (!(factor > 0)) throw new RangeError('factor must be > 0');
  }
  now(): number {
    return this.origin + (Date.now() - this.origin) * this.factor;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return setTimeout(fn, Math.max(0, ms) / this.factor);
  }
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  }
}
