/**
 * Part of the start suite (start-latency.ts runs it after each runtime's hello rounds): starts after
 * an idle pause, since real traffic is not back to back. Each sample first leaves the host idle for
 * IDLE_MS (nothing runs in this process; the daemon runs only its own timers), then takes one
 * generic start (the instance has sat in the pool, as in the generic series; the request goes on
the client's kept-alive connection, which the daemon keeps for 30 s), or one Unix-socket
 * round trip to an echo process, directly or through a relay (its floor: see idle-floor.ts). The
 * three methods rotate each round.
 */
import type { Cleanup } from './cleanup.js';
import type { DaemonProcess, Runtime } from './daemon-process.js';
import type { HandlerDir } from './fixtures.js';
import type { IdleFloor } from './idle-floor.js';
import type { StartSeries } from './start-latency.js';
import { sleep, summarize } from './stats.js';

export const IDLE_METHODS = ['hearth-generic-idle', 'uds-idle', 'uds-relay-idle'] as const;
/** How long the host sits idle before each after-idle sample, ms. */
export const IDLE_MS = 500;

export interface IdleContext {
  rt: Runtime;
  h: HandlerDir;
  event: unknown;
  /** The daemon with a generic pool (the start suite's). */
  warm: DaemonProcess;
  /** How old a generic instance must be before a generic start takes it (see start-latency.ts). */
  genericMinAgeMs: number;
  cleanup: Cleanup;
  log: (s: string) => void;
  /** A fresh function name. */
  name: (prefix: string) => string;
}

export async function runIdleRounds(c: IdleContext, floor: IdleFloor, rounds: number): Promise<StartSeries[]> {
  const series = IDLE_METHODS.map((method): StartSeries => ({ runtime: c.rt, handler: 'hello', method, samples: [], summary: summarize([]), excluded: 0 }));
  const sample = async (s: StartSeries): Promise<void> => {
    if (s.error) return;
    try {
      switch (s.method) {
        case 'hearth-generic-idle': {
          const name = c.name('gi');
          await c.warm.deploy(name, c.h.dir, c.rt, c.h.handler);
          await c.warm.waitGenericRefilled(c.rt, 150, 20_000, c.genericMinAgeMs);
          await sleep(IDLE_MS);
          const r = await c.warm.invoke(name, c.event);
          if (r.reply.start === 'generic') s.samples.push(r.ms);
          else s.excluded++;
          await c.warm.removeAndWait(name);
          break;
        }
        case 'uds-idle':
          await sleep(IDLE_MS);
          s.samples.push(await floor.oneHop());
          break;
        case 'uds-relay-idle':
          await sleep(IDLE_MS);
          s.samples.push(await floor.relay());
          break;
      }
    } catch (err) {
      s.error = (err as Error).message.slice(0, 500);
      c.log(`start-latency: ${c.rt}/hello/${s.method} failed: ${s.error}`);
    }
  };
  for (let r = 0; r < rounds; r++) {
    c.cleanup.check();
    for (let k = 0; k < series.length; k++) await sample(series[(r + k) % series.length]);
  }
  for (const s of series) s.summary = summarize(s.samples);
  c.log(
    `start-latency ${c.rt}/hello after ${IDLE_MS} ms idle: ` + series.map((s) => `${s.method} ${s.error ? 'FAILED' : s.summary.median.toFixed(2)}`).join(', '),
  );
  return series;
}
