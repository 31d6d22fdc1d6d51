'use strict';
/**
 * Hearth Node.js runtime shim. Runs inside a sandbox as
 *
 *   /usr/bin/node /hearth/runtimes/node/shim.js [--code DIR]      (DIR defaults to /code)
 *
 * with an empty environment, fds 0-2 on /dev/null and fd 3 a SOCK_STREAM socket to the daemon.
 * It speaks the framed protocol of src/runtimes/protocol.ts (u32 BE length + UTF-8 JSON):
 * sends `ready`, then serves `specialize` once and `invoke` any number of times, one at a time.
 * See docs/runtimes.md for the handler contract.
 *
 * This file is the main loop; beside it, frames.js (frame reader and writers), capture.js (log
 * capture, error descriptions, replies, the handler's context) and handler.js (loading and
 * calling the handler), all loaded in `main()` before `ready` through their absolute paths, so
 * the function's own files can never stand in for them.
 *
 * Plain CommonJS, not compiled, and kept small: every module required before `ready` is boot
 * time. All start-up work is in `main()`, so the file can also be a `node --build-snapshot` entry
 * (see the end of the file).
 */

/** Idle time after `ready` before the warm-up starts. */
const WARM_UP_DELAY_MS = 25;

/**
 * `load` requires the shim's own modules: `require` normally; in a snapshot built from this file,
 * whose `require` only knows built-ins, one made by module.createRequire at run time.
 */
function main(argv, load) {
  const { PROTOCOL_FD, encodeFrame, sendSync, frameReader } = load(`${__dirname}/frames.js`);
  const { MAX_MESSAGE_CHARS, captureStdio, drainLogs, truncate, describeError, elapsedMs, errorJson, replyJson, makeContext } = load(`${__dirname}/capture.js`);
  const { parseHandler, runHandler, packageType, loadModule } = load(`${__dirname}/handler.js`);
  const net = require('net');
  // Started with --no-lazy (sandbox-driver.ts): loaded now, used at specialize (see there).
  const v8 = process.execArgv.includes('--no-lazy') ? require('v8') : undefined;
  let codeDir = '/code';
  const at = argv.indexOf('--code');
  if (at >= 0 && at + 1 < argv.length) codeDir = argv[at + 1];

  captureStdio();

  const sock = new net.Socket({ fd: PROTOCOL_FD, readable: true, writable: true });

  function send(json) {
    sock.write(encodeFrame(json));
  }

  let spec; // the specialize message, once received
  let handler; // the resolved handler function
  /** The invocation in progress: {id, start, done}. */
  let current;
  /** 'boot' | 'specializing' | 'idle' | 'invoking' */
  let phase = 'boot';

  function finish(inv, ok, value) {
    if (inv.done) return;
    inv.done = true;
    if (current === inv) current = undefined;
    phase = 'idle';
    send(replyJson(inv, ok, value));
  }

  /** Reports `err` as the invocation's error, marked as the last reply before the process exits. */
  function finishFatal(inv, err) {
    if (inv.done) return;
    inv.done = true;
    current = undefined;
    phase = 'exiting';
    send(errorJson(inv, describeError(err), true));
  }

  function initError(message, cause) {
    const error = { type: 'InitError', message: truncate(message, MAX_MESSAGE_CHARS), stack: '' };
    if (cause !== undefined) error.stack = describeError(cause).stack;
    send(`{"t":"init_error","error":${JSON.stringify(error)}}`);
  }

  async function specialize(msg) {
    if (spec !== undefined) return initError('instance is already specialised');
    spec = msg;
    phase = 'specializing';
    const start = process.hrtime.bigint();
    if (msg.userns === true) {
      // The daemon has mapped root inside our user namespace to the function's host uid/gid
      // (docs/sandbox.md, Identity): become it (glibc applies the change to every thread) before
      // anything of the function is read. CAP_SETUID/CAP_SETGID/CAP_SETPCAP of this user namespace
      // stay (Node cannot capset); with one id mapped they allow nothing.
      try {
        process.setgid(0);
        process.setuid(0);
      } catch (err) {
        phase = 'idle';
        return initError('cannot become root of the user namespace', err);
      }
    }
    // Started with --no-lazy (the shim and the loaders are compiled by now): the function's own
    // code compiles lazily, as under plain node.
    if (v8 !== undefined) v8.setFlagsFromString('--lazy');
    const env = msg.env;
    if (env !== null && typeof env === 'object') {
      for (const k of Object.keys(env)) process.env[k] = String(env[k]);
    }
    const parsed = parseHandler(msg.handler);
    if (!parsed) {
      phase = 'idle';
      return initError(`bad handler ${JSON.stringify(msg.handler)}: expected "file.function" (e.g. "index.handler" or "src/app.handler")`);
    }
    const path = require('path');
    const fs = require('fs');
    const base = path.join(codeDir, parsed.file);
    let file;
    for (const ext of ['.js', '.cjs', '.mjs']) {
      const st = fs.statSync(base + ext, { throwIfNoEntry: false });
      if (st !== undefined && st.isFile()) {
        file = base + ext;
        break;
      }
    }
    const shown = parsed.file;
    if (file === undefined) {
      phase = 'idle';
      return initError(`handler file not found: ${shown}.js, ${shown}.cjs or ${shown}.mjs in ${codeDir}`);
    }
    try {
      process.chdir(codeDir);
    } catch {
      /* keep cwd */
    }
    let mod;
    try {
      mod = await loadModule(file, codeDir);
    } catch (e) {
      if (phase === 'exiting') return;
      phase = 'idle';
      const d = describeError(e);
      return initError(`failed to load ${path.relative(codeDir, file)}: ${d.type}: ${d.message}`, e);
    }
    if (phase === 'exiting') return;
    let fn = mod;
    for (const name of parsed.names) fn = fn === null || fn === undefined ? undefined : fn[name];
    const exported = parsed.names.join('.');
    if (fn === undefined) {
      phase = 'idle';
      return initError(`${path.relative(codeDir, file)} does not export '${exported}'`);
    }
    if (typeof fn !== 'function') {
      phase = 'idle';
      return initError(`'${exported}' exported by ${path.relative(codeDir, file)} is not a function (it is ${fn === null ? 'null' : typeof fn})`);
    }
    handler = fn;
    phase = 'idle';
    send(`{"t":"specialized","initMs":${elapsedMs(start)}}`);
  }

  function invoke(msg) {
    const inv = { id: typeof msg.id === 'string' ? msg.id : String(msg.id), start: process.hrtime.bigint(), done: false };
    if (handler === undefined) {
      return send(errorJson(inv, { type: 'InitError', message: 'instance is not specialised', stack: '' }));
    }
    current = inv;
    phase = 'invoking';
    const deadline = typeof msg.budgetMs === 'number' ? Date.now() + msg.budgetMs : Number(msg.deadline);
    const context = makeContext(inv.id, spec.name, spec.memoryMb, deadline);
    return new Promise((resolve) => {
      runHandler(handler, msg.event, context, (ok, value) => {
        finish(inv, ok, value);
        resolve();
      });
    });
  }

  /**
   * An uncaught exception or unhandled rejection: reported for the invocation (or as an init
   * error) in progress, then the process exits, since its state is unknown. The daemon sees the
   * reply, then the exit.
   */
  function fatal(err) {
    const exit = () => process.exit(1);
    if (phase === 'invoking' && current !== undefined && !current.done) {
      finishFatal(current, err);
    } else if (phase === 'specializing') {
      phase = 'exiting';
      const d = describeError(err);
      initError(`uncaught error while loading the handler: ${d.type}: ${d.message}`, err);
    } else {
      return exit();
    }
    sock.end(exit);
    setTimeout(exit, 1000).unref();
  }
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);

  // A handler that calls process.exit(): report it for the invocation, with its logs.
  process.on('exit', (code) => {
    if (phase === 'invoking' && current !== undefined && !current.done) {
      current.done = true;
      sendSync(errorJson(current, { type: 'RuntimeExit', message: `the handler exited the process (exit code ${code})`, stack: '' }, true));
    } else if (phase === 'specializing') {
      phase = 'exiting';
      const error = { type: 'InitError', message: `the handler module exited the process while loading (exit code ${code})`, stack: '' };
      sendSync(`{"t":"init_error","error":${JSON.stringify(error)}}`);
    }
  });

  // Requests run one at a time, in order; one that arrives while the instance is free starts
  // synchronously, inside the socket's data callback.
  const backlog = [];
  let busy = false;
  let requested = false;
  function dispatch(msg) {
    requested = true;
    if (msg === null || typeof msg !== 'object' || (msg.t !== 'specialize' && msg.t !== 'invoke')) {
      process.exit(2); // the daemon is trusted; anything else means a broken channel
    }
    backlog.push(msg);
    if (!busy) next();
  }
  function next() {
    const msg = backlog.shift();
    if (msg === undefined) return;
    busy = true;
    const running = msg.t === 'specialize' ? specialize(msg) : invoke(msg);
    Promise.resolve(running).then(() => {
      busy = false;
      next();
    });
  }

  sock.on('data', frameReader(dispatch));
  sock.on('end', () => process.exit(0));
  sock.on('error', () => process.exit(1));

  send(`{"t":"ready","runtime":"node","pid":${process.pid}}`);

  // While the instance waits as a generic one, run once through the paths a first specialise and
  // invoke take (console, the CommonJS and ESM loaders, reply building) so the first real request
  // does not pay for their lazy initialisation. One step per macrotask; it stops as soon as a
  // request arrives, and its output is discarded.
  const warmSteps = [
    () => {
      console.log('%s %d %o', 'warm', 1, { a: [1] });
      console.error(new Error('warm').stack.length);
      drainLogs();
    },
    async () => {
      parseHandler('warm/prewarm.handler');
      require('fs').statSync(require('path').join(__dirname, 'absent.js'), { throwIfNoEntry: false });
      packageType(__dirname, __dirname);
      const mod = await loadModule(require('path').join(__dirname, 'prewarm.cjs'), __dirname);
      if (requested) return;
      const inv = { id: 'warm', start: process.hrtime.bigint() };
      runHandler(mod.handler, { warm: true }, makeContext('warm', 'warm', 128, Date.now()), (ok, value) => {
        if (!requested) replyJson(inv, ok, value);
      });
    },
    () => loadModule(require('path').join(__dirname, 'prewarm.mjs'), __dirname),
  ];
  const warmNext = () => {
    const step = warmSteps.shift();
    if (step === undefined || requested) return;
    Promise.resolve()
      .then(step)
      .catch(() => undefined)
      .then(() => setImmediate(warmNext));
  };
  // Not at once: a cold start's specialize arrives within a millisecond or two of ready, and
  // should not queue behind the warm-up. (Warming up before ready instead was measured: the
  // first request is no faster and later invocations are 0.15 ms slower; docs/runtimes-node-boot.md.)
  setTimeout(warmNext, WARM_UP_DELAY_MS);
}

// Normal start, or `node --snapshot-blob shim.blob --build-snapshot shim.js` (then started with
// `node --snapshot-blob shim.blob [--code DIR]`; argv then has no script path).
if (process.argv.includes('--build-snapshot') || process.execArgv.includes('--build-snapshot')) {
  require('v8').startupSnapshot.setDeserializeMainFunction(() => main(process.argv.slice(1), require('module').createRequire(__filename)));
} else {
  main(process.argv.slice(2), require);
}
