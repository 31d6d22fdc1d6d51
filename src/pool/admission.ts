/**
 * Admission: the per-function concurrency limit. Each function version may have at most `limit`
 * invocations holding a slot; callers past it wait in FIFO order, synchronous callers ahead of
 * queued (async) events. A slot freed by `leave` passes straight to the next waiter, so a waiter
 * never loses its turn to a newcomer.
 *
 * Concurrency: event-loop only. Every `admit` that resolved must be matched by one `leave`.
 */
export type Priority = 'sync' | 'async';

interface Waiter {
  priority: Priority;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class Admission {
  /** Slots held per key. */
  private readonly held = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter[]>();

  /** Resolves when the caller holds one of `key`'s `limit` slots. */
  admit(key: string, limit: number, priority: Priority): Promise<void> {
    const held = this.held.get(key) ?? 0;
    const queue = this.waiters.get(key);
    if (held < limit && (!queue || queue.length === 0)) {
      this.held.set(key, held + 1);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      const w: Waiter = { priority, resolve, reject };
      if (priority === 'sync') {
        const firstAsync = list.findIndex((x) => x.priority === 'async');
        if (firstAsync < 0) list.push(w);
        else list.splice(firstAsync, 0, w);
      } else list.push(w);
      this.waiters.set(key, list);
    });
  }

  /**
   * Takes one of `key`'s `limit` slots now if one is free and nobody waits for it; false (nothing
   * taken) otherwise. For callers that are refused rather than queued when the function is busy.
   */
  tryAdmit(key: string, limit: number): boolean {
    const held = this.held.get(key) ?? 0;
    const queue = this.waiters.get(key);
    if (held >= limit || (queue && queue.length > 0)) return false;
    this.held.set(key, held + 1);
    return true;
  }

  /** Gives back a slot of `key`: to the next waiter if there is one. */
  leave(key: string): void {
    const list = this.waiters.get(key);
    const next = list?.shift();
    if (list && list.length === 0) this.waiters.delete(key);
    if (next) {
      next.resolve(); // the slot passes to the next waiter
      return;
    }
    const held = (this.held.get(key) ?? 1) - 1;
    if (held <= 0) this.held.delete(key);
    else this.held.set(key, held);
  }

  /** Rejects every waiting caller with `err` (the daemon is stopping). */
  rejectAll(err: Error): void {
    for (const list of this.waiters.values()) for (const w of list) w.reject(err);
    this.waiters.clear();
  }
}
