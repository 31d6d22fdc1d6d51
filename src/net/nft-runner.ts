/** Applying a gateway's nftables ruleset inside its namespace, with the host's `nsenter` and `nft`. */
import { spawn } from 'node:child_process';

import { missingDependency } from '../errors.js';
import { findTool, TOOL_PATH } from '../host-tools.js';

/** Applies a ruleset inside the namespace bind-mounted at netnsPath (atomically: one `nft -f -`). */
export type NftRunner = (netnsPath: string, ruleset: string) => Promise<void>;

/**
 * An NftRunner that runs `nsenter --net=NS -- nft -f -` with searchPath as PATH. A missing `nft`
 * or `nsenter`, or a kernel without nf_tables, is MISSING_DEPENDENCY (503) naming what to install,
 * checked before anything runs; other nft failures carry nft's message.
 */
export function makeNftRunner(searchPath: string = TOOL_PATH): NftRunner {
  return async (netnsPath, ruleset) => {
    const nsenter = findTool('nsenter', searchPath);
    if (!nsenter) throw missingDependency('private networks', `util-linux (\`nsenter\` not found in ${searchPath})`, 'apt-get install util-linux');
    const nft = findTool('nft', searchPath);
    if (!nft) throw missingDependency('private networks', `nftables (\`nft\` not found in ${searchPath})`, 'apt-get install nftables');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(nsenter, [`--net=${netnsPath}`, '--', nft, '-f', '-'], {
        stdio: ['pipe', 'ignore', 'pipe'],
        env: { PATH: searchPath },
      });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (d: string) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) return resolve();
        if (/not supported|Protocol not available|Could not load nf_tables/i.test(stderr)) {
          return reject(
            missingDependency(
              'private networks',
              `the kernel's nf_tables support (nft: ${stderr.trim().split('\n')[0]})`,
              'modprobe nf_tables (CONFIG_NF_TABLES, CONFIG_NFT_NAT)',
            ),
          );
        }
        reject(new Error(`nft -f - exited ${code}: ${stderr.trim()}`));
      });
      child.stdin.on('error', () => undefined); // an early exit is reported by 'close'
      child.stdin.end(ruleset);
    });
  };
}

/** Applies a ruleset with the host's nsenter and nft (makeNftRunner with TOOL_PATH). */
export const runNft: NftRunner = makeNftRunner();
