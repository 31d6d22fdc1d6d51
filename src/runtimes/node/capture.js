'use strict';
/**
 * The Node shim's log capture and reply building: stdout/stderr captured into one buffer that
 * each reply drains, thrown values described as {type, message, stack}, the reply frames' JSON
 * and the handler's `context`. Loaded by shim.js through its absolute path before `ready`.
 */

const MAX_RESULT_BYTES = 6 * 1024 * 1024;
const MAX_LOG_BYTES = 256 * 1024;
const MAX_MESSAGE_CHARS = 32 * 1024;
const MAX_STACK_CHARS = 64 * 1024;
/** Stack frames in the shim's own files (this directory) are dropped from a handler's trace. */
const SHIM_DIR = __dirname + '/';

/** Captured stdout+stderr since the last reply (kept across idle time: init output, late writes). */
let logParts = [];
let logBytes = 0;
let logDropped = 0;

function appendLog(chunk, encoding) {
  let s;
  if (typeof chunk === 'string') {
    s =
      typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8' && Buffer.isEncoding(encoding)
        ? Buffer.from(chunk, encoding).toString()
        : chunk;
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

/** The captured output since the last drain (with a note if some was dropped); empties the buffer. */
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
  for (const [name, fd] of [
    ['stdout', 1],
    ['stderr', 2],
  ]) {
    let stream;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: true,
      get() {
        if (stream === undefined) {
          const { Writable } = require('stream');
          stream = new Writable({
            decodeStrings: false,
            write(chunk, enc, cb) {
              appendLog(chunk, enc);
              cb();
            },
          });
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
      try {
        if (typeof e.name === 'string' && e.name) type = e.name;
      } catch {
        /* hostile getter */
      }
      try {
        if (e.message !== undefined) message = String(e.message);
        else if (!(e instanceof Error)) message = JSON.stringify(e) ?? String(e);
      } catch {
        message = Object.prototype.toString.call(e);
      }
      try {
        if (typeof e.stack === 'string') stack = cleanStack(e.stack);
      } catch {
        /* hostile getter */
      }
      return { type: truncate(type, 256), message: truncate(message, MAX_MESSAGE_CHARS), stack: truncate(stack, MAX_STACK_CHARS) };
    }
    return { type: 'Error', message: truncate(String(e), MAX_MESSAGE_CHARS), stack: '' };
  } catch {
    return { type: 'Error', message: 'unprintable thrown value', stack: '' };
  }
}

/** Drops the shim's own frames from a stack trace. */
function cleanStack(stack) {
  if (stack.indexOf(SHIM_DIR) < 0) return stack;
  return stack
    .split('\n')
    .filter((line) => line.indexOf(SHIM_DIR) < 0)
    .join('\n');
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
    return errorJson(inv, {
      type: 'ResultTooLarge',
      message: `handler result is ${Buffer.byteLength(json)} bytes of JSON; the limit is ${MAX_RESULT_BYTES}`,
      stack: '',
    });
  }
  return `{"t":"result","id":${JSON.stringify(inv.id)},"result":${json},"logs":${JSON.stringify(drainLogs())},"durationMs":${elapsedMs(inv.start)}}`;
}

/** The handler's `context` argument (Lambda-compatible names). */
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

module.exports = {
  MAX_MESSAGE_CHARS,
  captureStdio,
  drainLogs,
  truncate,
  describeError,
  elapsedMs,
  errorJson,
  replyJson,
  makeContext,
};
