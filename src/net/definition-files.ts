/**
 * The network definitions a host keeps in <stateDir>/networks/<name>.json: the definitions
 * themselves on one host, this host's cache of the cluster's (with its own inner subnets) with --nats.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';
import { validateNetworkName, type NetworkSpec } from './spec.js';

export interface PersistedNetwork {
  name: string;
  spec: NetworkSpec;
  /** This host's inner subnet ('' while it has built no gateway for the network). */
  innerSubnet: string;
  createdAt: string;
}

/** Every readable definition file, by name; unreadable ones are logged and skipped. */
export function readDefinitionFiles(dir: string, log: Logger): PersistedNetwork[] {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const out: PersistedNetwork[] = [];
  for (const file of fs.readdirSync(dir).sort()) {
    if (!file.endsWith('.json')) continue;
    try {
      const persisted = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as PersistedNetwork;
      validateNetworkName(persisted.name);
      if (`${persisted.name}.json` !== file) throw new Error('file name does not match the network name');
      out.push(persisted);
    } catch (e) {
      log.error({ err: e, file }, 'unreadable network definition; skipped');
    }
  }
  return out;
}

/** Writes one definition atomically (temporary file, rename). */
export function writeDefinitionFile(dir: string, p: PersistedNetwork): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, `${p.name}.json`);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(p, null, 2) + '\n', { mode: 0o644 });
  fs.renameSync(tmp, file);
}

export function removeDefinitionFile(dir: string, name: string): void {
  fs.rmSync(path.join(dir, `${name}.json`), { force: true });
}
