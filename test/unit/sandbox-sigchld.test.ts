/** Many sandbox drivers in one process share one SIGCHLD listener (no MaxListenersExceededWarning). */
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FakeBinding } from '../../src/sandbox/binding.js';
import { MemoryCgroupFs } from '../../src/sandbox/cgroups.js';
import { SandboxDriver } from '../../src/sandbox/sandbox-driver.js';

test('twelve started drivers add one SIGCHLD listener, removed when the last one stops', async (t) => {
  const before = process.listenerCount('SIGCHLD');
  const dirs: string[] = [];
  const drivers: SandboxDriver[] = [];
  try {
    for (let i = 0; i < 12; i++) {
      const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-sigchld-'));
      dirs.push(stateDir);
      const d = new SandboxDriver({
        stateDir,
        binding: new FakeBinding(),
        cgroupRoot: '/fake/cgroup',
        cgroupFs: new MemoryCgroupFs('/fake/cgroup', 2),
        cgroupName: `hearth-sigchld-${i}`,
        openSocket: () => new net.Socket(),
      });
      await d.start();
      drivers.push(d);
    }
    t.is(process.listenerCount('SIGCHLD'), before + 1);
  } finally {
    for (const d of drivers) await d.stop();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
  t.is(process.listenerCount('SIGCHLD'), before);
});
