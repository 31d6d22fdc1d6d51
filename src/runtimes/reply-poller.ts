/**
 * Waits for a warm instance's answer by busy-polling instead of sleeping, when it is due within
 * microseconds. A warm invocation crosses three processes (client, daemon, instance); on a VM
 * every hop that lands on a halted vCPU pays for its wake-up, and the daemon's own sleep between
 * sending the invocation and reading the answer was the largest of them (~50 µs of a ~0.24 ms
 * warm invoke on the 2-vCPU machine in BENCHMARKS.md). The daemon spins only when:
 *
 * - exactly one instance request is outstanding daemon-wide (under load the CPUs are awake and
 *   the spin would take a CPU from the instances), and
 * - that instance's recent handler runs (an average of the last few, as its shim reports them)
 *   took less than half the cap, so a slow handler never costs a spin.
 *
 * The spin runs after everything else the event loop had to do (setImmediate) and ends as soon as
 * any event is ready for the loop (the answer, another request, a child's exit), so it never
 * delays other work by more than the time to notice it. It costs daemon CPU (reported per
 * invocation by the throughput benchmark), and it is not a pure gain: a spinning daemon keeps its
 * vCPU busy, so the instance is woken on the other one, where a sleeping daemon would often have
 * shared its CPU. Measured, it wins for back-to-back streams and loses when calls interleave with
 * other work (BENCHMARKS.md), so the daemon's default (`replyPollUs: 0`) leaves it off.
 */
export interface ReplyPollerOptions {
  /** The longest spin, µs; a connection whose handlers average half of it or more never spins. 0: off. */
  maxSpinUs: number;
  /** Busy-polls the loop for up to `maxUs`; returns µs spun or -1 (the addon's spinUntilLoopEvent). */
  spin: (maxUs: number) => number;
}

/** One connection's side: say when an invocation went out and when its answer came. */
export interface ReplyWatch {
  sent(): void;
  /** `handlerMs`: the handler's own run time as the shim reported it (undefined: not known). */
  answered(handlerMs?: number): void;
}

/** Weight of a new handler time in a connection's running average. */
const ALPHA = 0.25;

export class ReplyPoller {
  private outstanding = 0;
  private scheduled = false;
  /** Spins that saw an event, spins that ran out, µs spun in all (for the pool's view and tests). */
  readonly stats = { hits: 0, misses: 0, spunUs: 0 };

  constructor(private readonly opts: ReplyPollerOptions) {}

  /** A watch for one connection: its own handler-time average, the daemon-wide outstanding count. */
  watch(): ReplyWatch {
    let avgUs = -1;
    let pending = false;
    return {
      sent: () => {
        if (pending) return;
        pending = true;
        this.outstanding++;
        if (avgUs >= 0 && 2 * avgUs < this.opts.maxSpinUs) this.schedule();
      },
      answered: (handlerMs) => {
        if (!pending) return;
        pending = false;
        this.outstanding--;
        if (handlerMs === undefined || !Number.isFinite(handlerMs) || handlerMs < 0) return;
        const us = handlerMs * 1000;
        avgUs = avgUs < 0 ? us : avgUs + ALPHA * (us - avgUs);
      },
    };
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.outstanding !== 1) return;
      const spun = this.opts.spin(this.opts.maxSpinUs);
      if (spun >= 0) {
        this.stats.hits++;
        this.stats.spunUs += spun;
      } else {
        this.stats.misses++;
        this.stats.spunUs += this.opts.maxSpinUs;
      }
    });
  }
}
