/**
 * Private-network gateway numbers (root). Builds its own private network (a namespace with a
 * bridge, a TCP accept server and an echo server), one gateway, then measures:
 *   - prepare: time to make an instance netns connected to the gateway (off the request path),
 *     one after another and 100 at once (with the JS event loop's worst lag);
 *   - request path: entering a prepared netns (setns) against making a new empty one (unshare);
 *   - first connection: TCP connect from each of the prepared instances, all held at once;
 *   - round trip: 1-byte TCP echo through the gateway (PAT) against a direct veth on the bridge;
 *   - release: one at a time, and a burst (deleted in one kernel batch).
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/bench-net.js [--instances 500] [--rtt 20000]
 *
 * Prints median, p99 and max of each. Removes everything it made, also after a failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { silentLogger } from '../src/log.js';
import { loadNetProbes } from '../src/native/net-probes.js';
import { waitLinksUp } from '../src/net/link-wait.js';
import { loadNetBinding } from '../src/net/native-binding.js';
import { NetworkManager, type InstanceNetns } from '../src/net/network-manager.js';
import { percentile } from '../src/stats/percentile.js';
import { COUNT, numberArg, scriptArgs, VALUE } from './cli-args.js';

const USAGE = 'usage: node dist/scripts/bench-net.js [--instances N] [--rtt N]';
const { INSTANCES, RTT } = scriptArgs('bench-net', USAGE, { instances: VALUE, rtt: VALUE }, ({ values: v }) => ({
  INSTANCES: numberArg(v.instances, '--instances', 500, COUNT),
  RTT: numberArg(v.rtt, '--rtt', 20000, COUNT),
}));
const PATH_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

function row(name: string, xs: number[] | Float64Array, unit: 'us' | 'ms'): string {
  const f = (v: number) => (unit === 'ms' ? (v / 1000).toFixed(3) : v.toFixed(1));
  return `${name.padEnd(48)} n=${String(xs.length).padStart(6)}  median ${f(percentile(xs, 0.5)).padStart(9)} ${unit}  p99 ${f(percentile(xs, 0.99)).padStart(9)} ${unit}  max ${f(Math.max(...xs)).padStart(9)} ${unit}`;
}
const since = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e3; // µs

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  const binding = loadNetBinding();
  const probes = loadNetProbes();
  const rand = crypto.randomBytes(3).toString('hex');
  const ns = `hearth-bench-${rand}`;
  const runDir = `/run/hearth-bench-${rand}`;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-bench-net-'));
  const ip = (...a: string[]) => execFileSync('ip', a, { env: PATH_ENV });
  const children: ChildProcess[] = [];
  const leases: InstanceNetns[] = [];
  const fds: number[] = [];
  const manager = new NetworkManager({ stateDir, runDir, log: silentLogger() });
  // An interrupted run (SIGINT/SIGTERM) never reaches `finally`: undo what it made, synchronously.
  const onSignal = (sig: NodeJS.Signals, code: number): void => {
    process.once(sig, () => {
      for (const c of children) c.kill('SIGKILL');
      const gateways = path.join(runDir, 'netns');
      for (const f of fs.existsSync(gateways) ? fs.readdirSync(gateways) : []) {
        try {
          execFileSync('umount', ['-l', path.join(gateways, f)], { env: PATH_ENV, stdio: 'ignore' });
        } catch {
          /* not mounted */
        }
      }
      try {
        ip('netns', 'del', ns);
      } catch {
        /* not made */
      }
      fs.rmSync(runDir, { recursive: true, force: true });
      fs.rmSync(stateDir, { recursive: true, force: true });
      process.exit(code);
    });
  };
  onSignal('SIGINT', 130);
  onSignal('SIGTERM', 143);
  try {
    ip('netns', 'add', ns);
    const sh = (...a: string[]) => ip('netns', 'exec', ns, ...a);
    sh('ip', 'link', 'set', 'lo', 'up');
    sh('ip', 'link', 'add', 'br0', 'type', 'bridge');
    sh('ip', 'link', 'set', 'br0', 'up');
    sh('ip', 'addr', 'add', '10.77.0.10/24', 'dev', 'br0');
    // Accept-and-close server on 7000 (first connections), 1-byte echo on 7002 (round trips).
    const src = `const net=require('net');let n=0;const ok=()=>{if(++n===2)console.log('ready')};
      net.createServer({noDelay:true},c=>c.end()).listen({port:7000,host:'0.0.0.0',backlog:4096},ok);
      net.createServer({noDelay:true},c=>c.on('data',d=>c.write(d))).listen(7002,'0.0.0.0',ok);`;
    const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', src], { stdio: ['ignore', 'pipe', 'inherit'], env: PATH_ENV });
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout.once('data', () => resolve());
      server.once('exit', (c) => reject(new Error(`server exited ${c}`)));
    });

    await manager.start();
    const tc = process.hrtime.bigint();
    await manager.create('bench', { attach: { bridge: 'br0', netns: ns }, address: '10.77.0.2/24', routes: ['10.77.0.0/24'] });
    console.log(`gateway create: ${(since(tc) / 1000).toFixed(1)} ms`);

    // Prepare N instances one after another, all held.
    const prepareUs: number[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      const t = process.hrtime.bigint();
      leases.push(await manager.prepareInstanceNetns('bench'));
      prepareUs.push(since(t));
    }
    console.log(row('prepare instance netns (off path)', prepareUs, 'ms'));

    // Concurrent prepares (libuv pool threads): throughput, and how long the JS thread is held.
    const extra = Math.min(100, Math.max(0, 1000 - leases.length));
    if (extra > 0) {
      let maxLagMs = 0;
      let last = Date.now();
      const lag = setInterval(() => {
        const now = Date.now();
        maxLagMs = Math.max(maxLagMs, now - last - 1);
        last = now;
      }, 1);
      const t = process.hrtime.bigint();
      const more = await Promise.all(Array.from({ length: extra }, () => manager.prepareInstanceNetns('bench')));
      const ms = since(t) / 1000;
      clearInterval(lag);
      console.log(`concurrent prepare: ${extra} in ${ms.toFixed(0)} ms (${((extra / ms) * 1000).toFixed(0)}/s), max event-loop lag ${maxLagMs} ms`);
      leases.push(...more);
    }

    // Request path: what a sandbox start pays for the network part (separate loops: a closed
    // new netns is torn down by a kernel worker that competes for the cores).
    const setnsUs: number[] = [];
    const unshareUs: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = process.hrtime.bigint();
      const s = probes.socketIn(leases[i % leases.length].netnsFd, 'udp'); // clone + setns + socket
      setnsUs.push(since(t));
      fs.closeSync(s);
    }
    for (let i = 0; i < 300; i++) {
      const t = process.hrtime.bigint();
      const n = binding.createNetns(); // clone + unshare(CLONE_NEWNET) + open
      unshareUs.push(since(t));
      fs.closeSync(n);
    }
    console.log(row('request path: enter prepared netns (setns)', setnsUs, 'us'));
    console.log(row('request path: new empty netns (unshare)', unshareUs, 'us'));
    await new Promise((r) => setTimeout(r, 1000)); // let the kernel finish tearing those down

    // First connection from every prepared instance, while all are held.
    const connectUs: number[] = [];
    let failures = 0;
    for (const l of leases) {
      const fd = probes.socketIn(l.netnsFd, 'tcp');
      try {
        connectUs.push(probes.tcpConnect(fd, '10.77.0.10', 7000, 5000));
      } catch {
        failures++;
      } finally {
        fs.closeSync(fd);
      }
    }
    const stalls = connectUs.filter((u) => u > 200_000).length;
    console.log(row('first TCP connect through the gateway', connectUs, 'ms'));
    console.log(`instances per gateway: ${leases.length} held, ${connectUs.length} connected, ${failures} failed, ${stalls} connects > 200 ms`);

    // Round trips: through the gateway vs a direct veth on the same bridge.
    const direct = binding.createNetns();
    fds.push(direct);
    const aFd = binding.openNetns(`/run/netns/${ns}`);
    fds.push(aFd);
    binding.createVeth(direct, 'eth0', aFd, 'direct0');
    binding.setLink(aFd, 'direct0', { master: 'br0', up: true });
    binding.setLink(direct, 'lo', { up: true });
    binding.setLink(direct, 'eth0', { up: true });
    binding.addAddress(direct, 'eth0', '10.77.0.50', 24);
    await waitLinksUp(
      binding,
      [
        { nsFd: direct, name: 'eth0', forwarding: false },
        { nsFd: aFd, name: 'direct0', forwarding: true },
      ],
      3000,
    );
    const viaGw = probes.socketIn(leases[0].netnsFd, 'tcp');
    const viaVeth = probes.socketIn(direct, 'tcp');
    fds.push(viaGw, viaVeth);
    probes.tcpConnect(viaGw, '10.77.0.10', 7002, 3000);
    probes.tcpConnect(viaVeth, '10.77.0.10', 7002, 3000);
    probes.pingPong(viaGw, 2000, 1000); // warm up
    probes.pingPong(viaVeth, 2000, 1000);
    const gwRtt: number[] = [];
    const vethRtt: number[] = [];
    const block = 1000;
    for (let done = 0; done < RTT; done += block) {
      // Interleave blocks so drift hits both paths alike.
      gwRtt.push(...probes.pingPong(viaGw, block, 1000));
      vethRtt.push(...probes.pingPong(viaVeth, block, 1000));
    }
    console.log(row('TCP 1-byte round trip via gateway (PAT)', gwRtt, 'us'));
    console.log(row('TCP 1-byte round trip via direct veth', vethRtt, 'us'));
    console.log(
      `round-trip overhead of the gateway: median ${(percentile(gwRtt, 0.5) - percentile(vethRtt, 0.5)).toFixed(1)} us, p99 ${(percentile(gwRtt, 0.99) - percentile(vethRtt, 0.99)).toFixed(1)} us`,
    );

    // Release: a burst of 100 at once (one kernel batch), then the rest one at a time.
    const burst = leases.splice(0, Math.min(100, leases.length));
    const tb = process.hrtime.bigint();
    await Promise.all(burst.map((l) => l.release()));
    console.log(`release burst: ${burst.length} in ${(since(tb) / 1000).toFixed(0)} ms`);
    const releaseUs: number[] = [];
    for (const l of leases.splice(0)) {
      const t = process.hrtime.bigint();
      await l.release();
      releaseUs.push(since(t));
    }
    console.log(row('release instance netns, one at a time (awaited)', releaseUs, 'ms'));
  } finally {
    for (const l of leases) await l.release().catch(() => undefined);
    for (const fd of fds) {
      try {
        fs.closeSync(fd);
      } catch {
        /* closed */
      }
    }
    await manager.delete('bench', { force: true }).catch(() => undefined);
    await manager.stop().catch(() => undefined);
    for (const c of children) c.kill('SIGKILL');
    try {
      ip('netns', 'del', ns);
    } catch {
      /* not made */
    }
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
