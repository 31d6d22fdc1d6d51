/**
 * A test's own "private network": named network namespaces with a bridge and TCP servers that
 * answer with the peer's address. Traffic goes only to addresses inside namespaces a test made.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export const PATH_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

export const ip = (...args: string[]): string => execFileSync('ip', args, { env: PATH_ENV, encoding: 'utf8' });
export const inNs = (ns: string, ...args: string[]): string => ip('netns', 'exec', ns, ...args);

/** TCP servers on 0.0.0.0:ports in `ns` that answer with the peer's address and close; resolves when listening. */
export async function startServer(ns: string, ports: number[], servers: ChildProcess[]): Promise<void> {
  const src = `const net=require('net');let n=0;for(const p of ${JSON.stringify(ports)})net.createServer(c=>c.end(c.remoteAddress)).listen(p,'0.0.0.0',()=>{if(++n===${ports.length})console.log('ready')});`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', src], { stdio: ['ignore', 'pipe', 'inherit'], env: PATH_ENV });
  servers.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (c) => reject(new Error(`server in ${ns} exited ${c}`)));
  });
}
