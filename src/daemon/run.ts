/** `hearth daemon`: parse flags, load config, start the daemon, stop it on SIGTERM/SIGINT. */
import { parseArgs } from 'node:util';
import { findCommand, parseOptions } from '../cli/commands.js';
import { loadConfig } from '../config.js';
import { claimSocketPath } from '../control/server.js';
import { isHearthError } from '../errors.js';
import { createLogger } from '../log.js';
import { binding } from '../sandbox/binding.js';
import { Daemon } from './daemon.js';
import { StateLock } from './state-lock.js';

export async function runDaemon(argv: string[]): Promise<number> {
  // The flags are the CLI's table (src/cli/commands.ts), which also makes `hearth daemon --help`.
  const { values } = parseArgs({ args: argv, options: parseOptions(findCommand('daemon')!) }) as { values: Record<string, string | undefined> };
  if (process.getuid?.() !== 0) {
    process.stderr.write('hearth daemon: must run as root (it builds namespaces, mounts and cgroups)\n');
    return 1;
  }
  let config;
  try {
    const generic: Record<string, number> = {};
    if (values['generic-node'] !== undefined) generic['node'] = Number(values['generic-node']);
    if (values['generic-python'] !== undefined) generic['python'] = Number(values['generic-python']);
    if (values['generic-provided'] !== undefined) generic['provided'] = Number(values['generic-provided']);
    config = loadConfig({
      ...(values['config'] ? { file: values['config'] } : {}),
      overrides: {
        socket: values['socket'],
        stateDir: values['state-dir'],
        logLevel: values['log-level'],
        socketGroup: values['socket-group'],
        lambdaListen: values['lambda-listen'],
        policy: values['policy'],
        metricsListen: values['metrics-listen'],
        nats: values['nats']?.split(',').map((u) => u.trim()),
        hostId: values['host-id'],
        uidRange: values['uid-range'],
        ...(Object.keys(generic).length ? { generic } : {}),
      },
    });
  } catch (err) {
    process.stderr.write(`hearth daemon: ${(err as Error).message}\n`);
    return 1;
  }
  // One daemon per state dir, one per socket: refused before anything on the host is touched.
  let lock: StateLock;
  try {
    lock = await StateLock.acquire(config.stateDir);
    try {
      await claimSocketPath(config.socket, (s) => binding().peerCredentials((s as unknown as { _handle: { fd: number } })._handle.fd));
    } catch (err) {
      await lock.release();
      throw err;
    }
  } catch (err) {
    process.stderr.write(`hearth daemon: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const log = createLogger(config.logLevel);
  log.info({ name: config.name, cgroup: config.cgroupName, runDir: config.runDir }, 'daemon resources');
  const daemon = new Daemon(config, log);
  // The signal handlers are in place before the start begins: a SIGTERM that arrives while the
  // daemon is starting (making cgroups, generic instances, joining brokers) lets the start finish
  // and then stops it, so everything the start made is removed (without them Node would exit at
  // once and leave cgroups and instances behind).
  let signalled: NodeJS.Signals | undefined;
  let wake: (() => void) | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    signalled ??= sig;
    wake?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const unlisten = (): void => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  try {
    await daemon.start();
  } catch (err) {
    const msg = isHearthError(err) ? err.message : ((err as Error).stack ?? String(err));
    process.stderr.write(`hearth daemon: cannot start: ${msg}\n`);
    await daemon.stop();
    await lock.release();
    unlisten();
    return 1;
  }
  if (!signalled) await new Promise<void>((resolve) => (wake = resolve));
  log.info({ signal: signalled }, 'stopping: draining and removing instances');
  await daemon.stop();
  unlisten();
  await lock.release();
  log.info('stopped');
  return 0;
}
