'use strict';
/**
 * The Node shim's frame reader and writers: the framed protocol of src/runtimes/protocol.ts
 * (u32 big-endian length + UTF-8 JSON) on fd 3. Loaded by shim.js through its absolute path
 * before `ready`; nothing here depends on the function's code.
 */

const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const PROTOCOL_FD = 3;

/** The frame (length prefix + UTF-8 body) carrying `json`. */
function encodeFrame(json) {
  const n = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(4 + n);
  frame.writeUInt32BE(n, 0);
  frame.write(json, 4);
  return frame;
}

/**
 * Writes a frame synchronously to fd 3 (used from the 'exit' hook, where nothing async runs).
 * fd 3 is non-blocking under libuv, so retry EAGAIN for a bounded time; other errors drop it.
 */
function sendSync(json) {
  const fs = require('fs');
  const frame = encodeFrame(json);
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

/**
 * A 'data' listener that decodes frames (chunks may split or coalesce them) and calls
 * `onMessage(msg)` for each, synchronously, in order. A frame over MAX_FRAME_BYTES or a body that
 * is not JSON means a broken channel: the process exits with code 2.
 */
function frameReader(onMessage) {
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
  return (chunk) => {
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
      onMessage(msg);
    }
  };
}

module.exports = { MAX_FRAME_BYTES, PROTOCOL_FD, encodeFrame, sendSync, frameReader };
