/** `hearth doctor [--json] [--state-dir DIR]`: exit 0 when every required check passes, 1 otherwise. */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isExecutableFile, TOOL_PATH } from '../host-tools.js';
import { formatReport, runChecks, type DoctorEnv } from './checks.js';

/** The real host, as the checks see it. */
export function hostDoctorEnv(stateDir: string): DoctorEnv {
  return {
    uid: process.getuid?.() ?? -1,
    kernelRelease: os.release(),
    nodeVersion: process.version,
    stateDir,
    cgroupRoot: '/sys/fs/cgroup',
    toolPath: TOOL_PATH,
    exists: (p) => existsSync(p),
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
    isExecutable: isExecutableFile,
    canCreateDir: (p) => {
      let dir = path.resolve(p);
      for (;;) {
        if (existsSync(dir)) {
          try {
            if (!statSync(dir).isDirectory()) return false;
            accessSync(dir, constants.W_OK | constants.X_OK);
            return true;
          } catch {
            return false;
          }
        }
        const parent = path.dirname(dir);
        if (parent === dir) return false;
        dir = parent;
      }
    },
    run: (cmd, args) => {
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000, env: { PATH: TOOL_PATH } });
      return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.error ? r.error.message : (r.stderr ?? '') };
    },
  };
}

export function runDoctor(argv: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, 'state-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`hearth doctor: ${(err as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(
      'usage: hearth doctor [--json] [--state-dir DIR]\n\nChecks the kernel, cgroups, tools and permissions the daemon needs; exit 0 when every required check passes.\n',
    );
    return 0;
  }
  const report = runChecks(hostDoctorEnv(values['state-dir'] ?? '/var/lib/hearth'));
  process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  return report.ok ? 0 : 1;
}
