/**
 * Fixed keep-alive: every idle instance lives for the same time after its last use (AWS Lambda
 * is reported at about 10 minutes, Azure Functions at 20). No pre-warming; one instance per
 * concurrent invocation.
 */
import { MINUTE_MS, type IdleContext } from './policy.js';
import { BasePolicy } from './policy-base.js';

export class FixedKeepAlivePolicy extends BasePolicy {
  readonly name: string;

  constructor(
    readonly keepAliveWindowMs: number,
    name?: string,
  ) {
    super();
    if (!(keepAliveWindowMs >= 0)) throw new RangeError('keep-alive must be ≥ 0');
    this.name = name ?? `fixed-${Math.round(keepAliveWindowMs / MINUTE_MS)}m`;
  }

  keepAliveMs(_fn: string, _now: number, _ctx: IdleContext): number {
    return this.keepAliveWindowMs;
  }
}
