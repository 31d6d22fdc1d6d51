/**
 * Shared settings of the fuzz targets (property-based, fast-check): how many runs, which seed,
 * and the corpus of inputs replayed first. A short run is part of `npm test`; `npm run fuzz` sets
 * HEARTH_FUZZ_RUNS for a long one. A failure prints fast-check's seed and path: rerun it with
 * HEARTH_FUZZ_SEED=<seed>, then add the shrunk input to corpus/<target>/ and a regular test.
 *
 * Targets: http1 (control API parser), frames (wire protocol, TS and both shims), bundle (tar.gz and
 * zip extractor), function-spec (deploy validator), sigv4 (the Lambda API's canonicaliser and
 * verifier, src/lambda/sigv4.ts).
 */
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';

const LONG = Number(process.env['HEARTH_FUZZ_RUNS'] ?? 0);

/** Runs for one property: `short` in `npm test`, HEARTH_FUZZ_RUNS (scaled by `weight`) in `npm run fuzz`. */
export function runs(short: number, weight = 1): number {
  return LONG > 0 ? Math.max(short, Math.round(LONG * weight)) : short;
}

/** fast-check parameters: a fixed seed per target unless HEARTH_FUZZ_SEED is set (a long run picks its own). */
export function params<T>(target: string, short: number, weight = 1): fc.Parameters<T> {
  const env = process.env['HEARTH_FUZZ_SEED'];
  const seed = env !== undefined ? Number(env) : LONG > 0 ? Date.now() ^ hash(target) : hash(target);
  return { numRuns: runs(short, weight), seed };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h | 0;
}

/** The corpus of a target: test/fuzz/corpus/<target>/* as buffers, by file name. */
export function corpus(target: string): Array<{ name: string; data: Buffer }> {
  const dir = path.join(__dirname, '..', '..', '..', 'test', 'fuzz', 'corpus', target);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => ({ name, data: fs.readFileSync(path.join(dir, name)) }));
}
