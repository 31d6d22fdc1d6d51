/** Binary min-heap of timed events: earlier time first, then lower kind, then insertion order. */
export interface TimedEvent {
  t: number;
  kind: number;
  seq: number;
}

export class EventQueue<E extends TimedEvent> {
  private readonly heap: E[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Adds e (its `seq` is set here; the object is kept, not copied). */
  push(e: Omit<E, 'seq'>): void {
    const ev = e as E;
    ev.seq = this.seq++;
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  peek(): E | undefined {
    return this.heap[0];
  }

  pop(): E | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: TimedEvent, b: TimedEvent): boolean {
  if (a.t !== b.t) return a.t < b.t;
  if (a.kind !== b.kind) return a.kind < b.kind;
  return a.seq < b.seq;
}
