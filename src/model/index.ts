/** The pool policies: one interface (policy.ts), Hearth's own and the published baselines. */
import { FaasCachePolicy } from './faascache.js';
import { FixedKeepAlivePolicy } from './fixed-keep-alive.js';
import { HearthPolicy } from './hearth-policy.js';
import { HybridHistogramPolicy } from './hybrid-histogram.js';
import { MINUTE_MS, type Policy } from './policy.js';

export * from './policy.js';
export { FrequencyModel } from './frequency-model.js';
export { HearthPolicy } from './hearth-policy.js';
export { FixedKeepAlivePolicy } from './fixed-keep-alive.js';
export { HybridHistogramPolicy } from './hybrid-histogram.js';
export { FaasCachePolicy } from './faascache.js';
export { GreedyDual } from './eviction.js';
export { BasePolicy } from './policy-base.js';

export const POLICY_NAMES = ['hearth', 'fixed-10m', 'fixed-20m', 'hybrid-histogram', 'faascache'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/** A fresh policy by name, with its documented defaults. */
export function createPolicy(name: PolicyName): Policy {
  switch (name) {
    case 'hearth':
      return new HearthPolicy();
    case 'fixed-10m':
      return new FixedKeepAlivePolicy(10 * MINUTE_MS);
    case 'fixed-20m':
      return new FixedKeepAlivePolicy(20 * MINUTE_MS);
    case 'hybrid-histogram':
      return new HybridHistogramPolicy();
    case 'faascache':
      return new FaasCachePolicy();
  }
}
