/**
 * The invocation feed: one typed record per finished invocation, whatever started it. It is the
 * seam observability subscribes to (metrics, invocation logs, the dashboard): the dispatcher emits,
 * listeners only read. A listener that throws is logged by the feed's owner and never reaches the
 * invocation path.
 *
 * Declared here, by the layer that knows every invocation's trigger; the layers above import it.
 */
import type { StartKind } from '../pool/types.js';
import type { FunctionErrorInfo } from '../runtimes/types.js';

/** What made an invocation: a sync API call, a queued event, a schedule tick, the Lambda API. */
export const TRIGGERS = ['sync', 'async', 'schedule', 'lambda'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** How an invocation ended: a result, the function's error, its timeout, or refused for lack of capacity. */
export const OUTCOMES = ['ok', 'error', 'timeout', 'throttled'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface InvocationRecord {
  /** The invocation id the runtime saw (context.awsRequestId / invocation id). */
  id: string;
  function: string;
  trigger: Trigger;
  /** How it got its instance; null when it never got one (throttled, or the engine failed). */
  start: StartKind | null;
  initMs: number;
  durationMs: number;
  outcome: Outcome;
  error: FunctionErrorInfo | null;
  /** The handler's captured stdout and stderr of this invocation. */
  logs: string;
  /** When it ended, ms since the epoch (the daemon's clock). */
  endedAt: number;
  /** The queued event it ran, for async and schedule triggers. */
  eventId?: string;
}

export type InvocationListener = (record: InvocationRecord) => void;

/** A queued event that ended `dead` (its attempts or maximum age used up, or it can never run). */
export interface DeadLetter {
  function: string;
  eventId: string;
  trigger: 'async' | 'schedule';
  /** The error of its last attempt. */
  error: FunctionErrorInfo;
  /** When it ended, ms since the epoch (the daemon's clock). */
  at: number;
}

/** Typed records to listeners; a listener that throws goes to `onListenerError`, never to the emitter. */
export class Feed<T> {
  private readonly listeners = new Set<(record: T) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: (record: T) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  get size(): number {
    return this.listeners.size;
  }

  emit(record: T): void {
    for (const l of this.listeners) {
      try {
        l(record);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}

/** One record per finished invocation, whatever started it. */
export class InvocationFeed extends Feed<InvocationRecord> {}

/** One record per queued event that ended dead. */
export class DeadLetterFeed extends Feed<DeadLetter> {}

/** The outcome of a finished invocation from its error (null: ok). */
export function outcomeOf(error: FunctionErrorInfo | null): Outcome {
  if (!error) return 'ok';
  return error.type === 'Timeout' ? 'timeout' : 'error';
}
