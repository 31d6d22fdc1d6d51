/**
 * A metric family whose series are kept per function, so that a scrape of many functions costs
 * only what changed since the last one. Each function has its own prom-client metric (registered
 * in no registry); its sample lines are rendered by prom-client's own serializer and kept until
 * the function's series change. The family's text is then one `# HELP` and one `# TYPE` line (also
 * prom-client's) followed by every function's cached lines: all samples of the family together,
 * as the exposition format requires, and not one line written by hand.
 *
 * prom-client renders about 3-15 µs per sample line (BENCHMARKS.md); with 1,000 functions a daemon
 * exposes tens of thousands, so re-rendering all of them at every scrape would take far longer
 * than the scrape budget, while few of them change between two scrapes.
 */
import { Registry, type Metric } from 'prom-client';

interface Part<M> {
  metric: M;
  /** Its sample lines (no header, each ending in a newline), or null when they must be rendered again. */
  text: string | null;
  /** What the series were last set from (gauges): equal means unchanged, nothing to do. */
  signature: string | null;
}

/**
 * A function's parts: usually one, '' (all its series in one metric); a family whose series of one
 * function change one at a time (the invocation counter) keeps one part per series, so that a
 * scrape renders again only the series that moved. A function's parts stay together in the text.
 */
type Parts<M> = Map<string, Part<M>>;

export class FunctionFamily<M extends Metric<string>> {
  private readonly parts = new Map<string, Parts<M>>();
  private readonly scratch = new Registry();
  private header: string | undefined;
  /** The whole family as last rendered, or null when a part changed since. */
  private whole: Buffer | null = null;
  /** Parts rendered by the last `bytes()` (what a scrape re-rendered; for tests and benchmarks). */
  rendered = 0;

  /** `make` builds an empty metric of the family (with `registers: []`). */
  constructor(
    readonly name: string,
    private readonly make: () => M,
  ) {}

  /** The function's metric (created empty on first use), or its part `sub`'s; call `changed` after changing it. */
  metric(fn: string, sub = ''): M {
    return this.part(fn, sub).metric;
  }

  private part(fn: string, sub: string): Part<M> {
    let ps = this.parts.get(fn);
    if (!ps) this.parts.set(fn, (ps = new Map<string, Part<M>>()));
    let p = ps.get(sub);
    if (!p) ps.set(sub, (p = { metric: this.make(), text: null, signature: null }));
    return p;
  }

  /** Its cached lines are stale. */
  changed(fn: string, sub = ''): void {
    const p = this.parts.get(fn)?.get(sub);
    if (p) this.stale(p);
  }

  private stale(p: Part<M>): void {
    p.text = null;
    this.whole = null;
  }

  /**
   * For values recomputed at every scrape (gauges): when `signature` differs from the one the
   * series were last set from, `apply` sets them again and the lines are rendered anew.
   */
  update(fn: string, signature: string, apply: (metric: M) => void): void {
    const p = this.part(fn, '');
    if (p.signature === signature) return;
    p.metric.reset();
    apply(p.metric);
    p.signature = signature;
    this.stale(p);
  }

  has(fn: string): boolean {
    return this.parts.has(fn);
  }

  functions(): IterableIterator<string> {
    return this.parts.keys();
  }

  /** Removes the function's series. */
  delete(fn: string): void {
    if (this.parts.delete(fn)) this.whole = null;
  }

  /**
   * The whole family in the text format, ending in a newline; bytes, so that a scrape copies it
   * once. The parts' lines are kept as strings: one buffer per family when it changed, not one per
   * part (thousands of small buffers made the collector work at every scrape).
   */
  async bytes(): Promise<Buffer> {
    this.rendered = 0;
    if (this.whole) return this.whole;
    this.header ??= await this.render(this.make());
    let text = `${this.header}\n`;
    for (const ps of this.parts.values())
      for (const p of ps.values()) {
        if (p.text === null) {
          const full = await this.render(p.metric);
          p.text = full.length > this.header.length ? `${full.slice(this.header.length + 1)}\n` : '';
          this.rendered++;
        }
        text += p.text;
      }
    return (this.whole = Buffer.from(text));
  }

  /** prom-client's text of one metric: `# HELP`, `# TYPE`, then its sample lines. */
  private async render(m: M): Promise<string> {
    this.scratch.registerMetric(m);
    try {
      return await this.scratch.getSingleMetricAsString(this.name);
    } finally {
      this.scratch.removeSingleMetric(this.name);
    }
  }
}
