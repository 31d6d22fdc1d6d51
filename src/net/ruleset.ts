/**
 * The nftables ruleset of one gateway namespace, as text for `nft -f -` (pure). The whole
 * namespace ruleset is replaced in one transaction (`flush ruleset` + table), so a gateway never
 * runs with half its rules. Chain names avoid nft keywords (e.g. `fwd`).
 */
import { formatIp, formatPrefix, type Prefix } from './ipv4.js';
import type { AllowRule } from './spec.js';

export interface RulesetInput {
  /** Inner bridge (instances' side). */
  innerIf: string;
  /** Outer leg (private network side). */
  outerIf: string;
  innerSubnet: Prefix;
  /** The gateway's address on the private network: every instance flow leaves with it (PAT). */
  outerAddress: number;
  allow: AllowRule[];
  /** Destinations refused even when inside `allow`: the host's own addresses. */
  deny: number[];
}

export const TABLE_NAME = 'hearth';

const q = (s: string): string => JSON.stringify(s);

export function buildRuleset(i: RulesetInput): string {
  const inner = q(i.innerIf);
  const outer = q(i.outerIf);
  const fromInstances = `iifname ${inner} oifname ${outer} ip saddr ${formatPrefix(i.innerSubnet)}`;
  const lines: string[] = [];
  lines.push('flush ruleset');
  lines.push(`table inet ${TABLE_NAME} {`);
  if (i.deny.length > 0) {
    lines.push('  set host_addresses {');
    lines.push('    type ipv4_addr');
    lines.push(
      `    elements = { ${[...new Set(i.deny)]
        .sort((a, b) => a - b)
        .map(formatIp)
        .join(', ')} }`,
    );
    lines.push('  }');
  }
  // Nothing may talk to the gateway itself: not instances, not the private network.
  lines.push('  chain input_filter {');
  lines.push('    type filter hook input priority filter; policy drop;');
  lines.push('    iif "lo" accept');
  lines.push(`    iifname ${inner} meta l4proto tcp reject with tcp reset`);
  lines.push(`    iifname ${inner} reject with icmpx type admin-prohibited`);
  lines.push('  }');
  // Only instance -> allowed destination flows are forwarded; their replies come back.
  lines.push('  chain forward_filter {');
  lines.push('    type filter hook forward priority filter; policy drop;');
  lines.push('    ct state established,related accept');
  lines.push('    ct state invalid drop');
  if (i.deny.length > 0) lines.push(`    ${fromInstances} ip daddr @host_addresses jump refuse`);
  for (const a of i.allow) {
    const dst = `ip daddr ${formatPrefix(a.prefix)}`;
    if (a.port === undefined) lines.push(`    ${fromInstances} ${dst} accept`);
    else lines.push(`    ${fromInstances} ${dst} meta l4proto { tcp, udp } th dport ${a.port} accept`);
  }
  lines.push(`    iifname ${inner} jump refuse`);
  lines.push('  }');
  // Fast failure for instances (connection refused) instead of a silent timeout.
  lines.push('  chain refuse {');
  lines.push('    meta l4proto tcp reject with tcp reset');
  lines.push('    reject with icmpx type admin-prohibited');
  lines.push('  }');
  lines.push('  chain postrouting_nat {');
  lines.push('    type nat hook postrouting priority srcnat; policy accept;');
  lines.push(`    oifname ${outer} ip saddr ${formatPrefix(i.innerSubnet)} snat ip to ${formatIp(i.outerAddress)}`);
  lines.push('  }');
  lines.push('}');
  return lines.join('\n') + '\n';
}
