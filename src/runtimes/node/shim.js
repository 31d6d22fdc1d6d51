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
 * Plain CommonJS, not compiled, and kept small: every module required before `ready` is boot
 * time. All start-up work is in `main()`, so the file can also be a `node --build-snapshot` entry
 * (see the end of the file).
 */

const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const MAX_RESULT_BYTES = 6 * 1024 * 1024;
const MAX_LOG_BYTES = 256 * 1024;
const MAX_MESSAGE_CHARS = 32 * 1024;
const MAX_STACK_CHARS = 64 * 1024;
const PROTOCOL_FD = 3;
/** Idle time after `ready` before the warm-up starts. */
const WARM_UP_DELAY_MS = 25;

/** Captured stdout+stderr since the last reply (kept across idle time: init output, late writes). */
let logParts = [];
let logBytes = 0;
let logDropped = 0;

function appendLog(chunk, encoding) {
  let s;
  if (typeof chunk === 'string') {
    s = typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8' && Buffer.isEncoding(encoding) ? Buffer.from(chunk, encoding).toString() : chunk;
  } else if (chunk instanceof Uint8Array) {
    s = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString();
  } else {
    s = String(chunk);
  }
  const n = Buffer.byteLength(s);
  const room = MAX_LOG_BYTES - logBytes;
  if (n <= room) {
    logParts.push(s);
    logBytes += n;
    return;
  }
  if (room > 0) {
    logParts.push(Buffer.from(s).subarray(0, room).toString());
    logBytes = MAX_LOG_BYTES;
  }
  logDropped += n - Math.max(room, 0);
}

function drainLogs() {
  let s = logParts.length === 1 ? logParts[0] : logParts.join('');
  if (logDropped > 0) s += `\n[hearth: log output truncated, ${logDropped} bytes dropped]\n`;
  logParts = [];
  logBytes = 0;
  logDropped = 0;
  return s;
}

/**
 * Replaces process.stdout/stderr (before anything creates the real ones) with writables that
 * append to the log buffer synchronously. console.* writes through them.
 */
function captureStdio() {
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]]) {
    let stream;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: true,
      get() {
        if (stream === undefined) {
          const { Writable } = require('stream');
          stream = new Writable({ decodeStrings: false, write(chunk, enc, cb) { appendLog(chunk, enc); cb(); } });
          // Synchronous capture: logs written before the handler returns are in its reply.
          stream.write = function write(chunk, encoding, cb) {
            appendLog(chunk, encoding);
            if (typeof encoding === 'function') cb = encoding;
            if (typeof cb === 'function') process.nextTick(cb);
            return true;
          };
          stream.fd = fd;
          stream.isTTY = false;
        }
        return stream;
      },
    });
  }
}

function truncate(s, max) {
  return s.length > max ? s.slice(0, max) + '…[truncated]' : s;
}

/** Turns any thrown value into {type, message, stack}, never throwing itself. */
function describeError(e) {
  try {
    if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
      let type = 'Error';
      let message = '';
      let stack = '';
      try { if (typeof e.name === 'string' && e.name) type = e.name; } catch { /* hostile getter */ }
      try { if (e.message !== undefined) message = String(e.message); else if (!(e instanceof Error)) message = JSON.stringify(e) ?? String(e); } catch { message = Object.prototype.toString.call(e); }
      try { if (typeof e.stack === 'string') stack = cleanStack(e.stack); } catch { /* hostile getter */ }
      return { type: truncate(type, 256), message: truncate(message, MAX_MESSAGE_CHARS), stack: truncate(stack, MAX_STACK_CHARS) };
    }
    return { type: 'Error', message: truncate(String(e), MAX_MESSAGE_CHARS), stack: '' };
  } catch {
    return { type: 'Error', message: 'unprintable thrown value', stack: '' };
  }
}

/** Drops the shim's own frames from a stack trace. */
function cleanStack(stack) {
  if (stack.indexOf(__filename) < 0) return stack;
  return stack.split('\n').filter((line) => line.indexOf(__filename) < 0).join('\n');
}

function elapsedMs(start) {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** An error reply; `exiting` marks the process's last reply (it exits right after sending it). */
function errorJson(inv, error, exiting) {
  const tail = exiting ? ',"exiting":true' : '';
  return `{"t":"error","id":${JSON.stringify(inv.id)},"error":${JSON.stringify(error)},"logs":${JSON.stringify(drainLogs())},"durationMs":${elapsedMs(inv.start)}${tail}}`;
}

/** The reply frame's JSON for an invocation that ended with (ok, value); drains the logs. */
function replyJson(inv, ok, value) {
  if (!ok) return errorJson(inv, describeError(value));
  let json;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    return errorJson(inv, { type: 'SerializationError', message: `handler result is not JSON-serialisable: ${describeError(e).message}`, stack: '' });
  }
  if (json === undefined) json = 'null';
  if (json.length > MAX_RESULT_BYTES / 3 && Buffer.byteLength(json) > MAX_RESULT_BYTES) {
    return errorJson(inv, { type: 'ResultTooLarge', message: `handler result is ${Buffer.byteLength(json)} bytes of JSON; the limit is ${MAX_RESULT_BYTES}`, stack: '' });
  }
  return `{"t":"result","id":${JSON.stringify(inv.id)},"result":${json},"logs":${JSON.stringify(drainLogs())},"durationMs":${elapsedMs(inv.start)}}`;
}

function makeContext(id, functionName, memoryMb, deadline) {
  return {
    invocationId: id,
    awsRequestId: id,
    functionName,
    memoryLimitInMB: memoryMb,
    deadlineMs: deadline,
    getRemainingTimeInMillis() {
      return Math.max(0, deadline - Date.now());
    },
  };
}

/**
 * Calls `fn(event, context[, callback])` and reports once through done(ok, value): a returned
 * promise settles it; a handler declaring three parameters may instead call the callback; any
 * other return value is the result.
 */
function runHandler(fn, event, context, done) {
  let settled = false;
  const settle = (ok, value) => {
    if (settled) return;
    settled = true;
    done(ok, value);
  };
  try {
    let returned;
    if (fn.length >= 3) {
      returned = fn(event, context, (err, result) => (err !== null && err !== undefined ? settle(false, err) : settle(true, result)));
      // not a promise: wait for the callback (the daemon's timeout bounds the wait)
      if (returned === null || typeof returned !== 'object' || typeof returned.then !== 'function') return;
    } else {
      returned = fn(event, context);
    }
    if (returned !== null && (typeof returned === 'object' || typeof returned === 'function') && typeof returned.then === 'function') {
      returned.then((v) => settle(true, v), (e) => settle(false, e));
    } else {
      settle(true, returned);
    }
  } catch (e) {
    settle(false, e);
  }
}

/**
 * The "type" of the nearest package.json at or above `dir`, not above `root`: how Node decides
 * whether a .js file is ESM. ESM files are import()ed rather than require()d, since require(esm)
 * warns on stderr and cannot load top-level await.
 */
function packageType(dir, root) {
  const fs = require('fs');
  const path = require('path');
  root = path.resolve(root);
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    let text;
    try {
      text = fs.readFileSync(path.join(d, 'package.json'), 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      try {
        return JSON.parse(text).type === 'module' ? 'module' : 'commonjs';
      } catch {
        return 'commonjs';
      }
    }
    if (d === root || d === path.dirname(d) || !d.startsWith(root)) return 'commonjs';
  }
}

function importFile(file) {
  return import(require('url').pathToFileURL(file).href);
}

/** Loads a handler module: ESM through import(), CommonJS through a require() rooted at the file. */
async function loadModule(file, root) {
  if (file.endsWith('.mjs') || (file.endsWith('.js') && packageType(require('path').dirname(file), root) === 'module')) {
    return importFile(file);
  }
  try {
    return require('module').createRequire(file)(file);
  } catch (e) {
    if (e === null || typeof e !== 'object' || (e.code !== 'ERR_REQUIRE_ESM' && e.code !== 'ERR_REQUIRE_ASYNC_MODULE')) throw e;
    return importFile(file);
  }
}

function main(argv) {
  const net = require('net');
  // Started with --no-lazy (sandbox-driver.ts): loaded now, used at specialize (see there).
  const v8 = process.execArgv.includes('--no-lazy') ? require('v8') : undefined;
  let codeDir = '/code';
  const at = argv.indexOf('--code');
  if (at >= 0 && at + 1 < argv.length) codeDir = argv[at + 1];

  captureStdio();

  const sock = new net.Socket({ fd: PROTOCOL_FD, readable: true, writable: true });

  function send(json) {
    const n = Buffer.byteLength(json);
    const frame = Buffer.allocUnsafe(4 + n);
    frame.writeUInt32BE(n, 0);
    frame.write(json, 4);
    sock.write(frame);
  }

  /**
   * Writes a frame synchronously (used from the 'exit' hook, where nothing async runs). fd 3 is
   * non-blocking under libuv, so retry EAGAIN for a bounded time.
   */
  function sendSync(json) {
    const fs = require('fs');
    const n = Buffer.byteLength(json);
    const frame = Buffer.allocUnsafe(4 + n);
    frame.writeUInt32BE(n, 0);
    frame.write(json, 4);
    let off = 0;
    const giveUp = Date.now() + 1000;
    while (off < frame.length && Date.now() < giveUp) {
      try {
        off += fs.writeSync(PROTOCOL_FD, frame, off, frame.length - off);
      } catch (e) {
        if (e.code !== 'EAGAIN') return;
      }
    }
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

  /** Parses `path/to/file.fn.nested` the way Lambda does: the module is up to the first dot of the last segment. */
  function parseHandler(h) {
    if (typeof h !== 'string') return undefined;
    const slash = h.lastIndexOf('/');
    const dot = h.indexOf('.', slash + 1);
    if (dot <= slash + 1 || dot === h.length - 1) return undefined;
    const file = h.slice(0, dot);
    const names = h.slice(dot + 1).split('.');
    if (file.startsWith('/') || file.split('/').some((p) => p === '' || p === '.' || p === '..')) return undefined;
    if (names.some((p) => p === '')) return undefined;
    return { file, names };
  }

  async function specialize(msg) {
    if (spec !== undefined) return initError('instance is already specialised');
    spec = msg;
    phase = 'specializing';
    const start = process.hrtime.bigint();
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
    try { process.chdir(codeDir); } catch { /* keep cwd */ }
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

  // Frame decoder: chunks may split or coalesce frames.
  let chunks = [];
  let buffered = 0;
  let need = -1;
  function take(n) {
    const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
    const out = all.subarray(0, n);
    chunks = all.length > n ? [all.subarray(n)] : [];
    buffered -= n;
    return out;
  }
  sock.on('data', (chunk) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (need < 0) {
        if (buffered < 4) return;
        need = take(4).readUInt32BE(0);
        if (need > MAX_FRAME_BYTES) process.exit(2);
      }
      if (buffered < need) return;
      const body = take(need);
      need = -1;
      let msg;
      try {
        msg = JSON.parse(body.toString('utf8'));
      } catch {
        process.exit(2);
      }
      dispatch(msg);
    }
  });
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
  require('v8').startupSnapshot.setDeserializeMainFunction(() => main(process.argv.slice(1)));
} else {
  main(process.argv.slice(2));
}
