"""Hearth's `provided` runtime: a relay between the daemon's framed protocol (fd 3, the messages of
src/runtimes/protocol.ts) and the AWS Lambda Runtime API, served on 127.0.0.1:9001 inside the
instance's own network namespace to the function's `bootstrap` (any language).

Forked from the Python zygote (src/runtimes/python/zygote.py) like a Python instance, it:
- listens on 127.0.0.1:9001 and says `ready` (a generic instance);
- on `specialize`, starts /code/bootstrap with the Lambda environment (AWS_LAMBDA_RUNTIME_API,
  _HANDLER, LAMBDA_TASK_ROOT, ...) and the function's env, stdout and stderr on one pipe; the
  bootstrap's first GET .../invocation/next ends its init (`specialized`), POST /runtime/init/error
  or an exit before that fails it (`init_error`);
- hands each `invoke` to the parked GET .../invocation/next and turns POST .../{id}/response and
  .../{id}/error into `result` and `error` replies, with the output captured since the last one;
- when the bootstrap exits during an invocation, answers it with a RuntimeExit error marked
  `exiting` (killed by SIGKILL, e.g. the OOM killer: it exits without a reply, so the daemon reads
  the cgroup's verdict); when it exits between invocations, exits itself.
Timeouts are the daemon's: it kills the instance. docs/runtimes-provided.md is the user's guide.
Standard library only.
"""

import codecs
import json
import os
import selectors
import signal
import sys
import time
from urllib.parse import unquote

if __name__ == '__main__':  # run directly (tests): this directory and the shim's helpers in ../python
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [_here, os.path.join(_here, '..', 'python')]

from _hearth_capture import LogBuffer  # noqa: E402
from _hearth_frames import MAX_FRAME_BYTES, Channel, json_encode, json_encode_ascii  # noqa: E402
from _hearth_http import BadRequest, Conn, error_body, listen  # noqa: E402
from _hearth_lambda import lambda_env, parse_error, result_json, start_bootstrap, trace_id  # noqa: E402

HOST, PORT = '127.0.0.1', 9001
PREFIX = '/2018-06-01/runtime/'
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # the response limit of src/runtimes/protocol.ts (MAX_RESULT_BYTES)
ACCOUNT_ID = '000000000000'
ACCEPTED = b'{"status":"OK"}'


class Relay:
    def __init__(self, fd, code_dir, listener):
        self.ch = Channel(fd)
        self.fd = fd
        self.code_dir = code_dir
        self.listener = listener
        self.sel = selectors.DefaultSelector()
        self.logs = LogBuffer()
        self.decoder = None
        self.log_fd = -1
        self.pid = -1  # the bootstrap's pid
        self.spec = None
        self.phase = 'generic'  # generic | init | ready | invoking | failed
        self.started = 0.0
        self.pending = None  # the daemon's invoke message not yet handed out
        self.current = None  # (id, start) of the invocation handed to the bootstrap
        self.parked = None  # the Conn whose GET /next waits for an event
        self.inbuf = bytearray()

    # --- the daemon's side -------------------------------------------------------------------

    def send_json(self, text):
        self.ch.send_json(text)

    def reply(self, kind, inv_id, payload_json, start, exiting=False):
        self.drain_logs()
        logs = self.logs.drain()
        ms = (time.perf_counter() - start) * 1e3
        try:
            logs_json = json_encode(logs)
        except ValueError:
            logs_json = json_encode_ascii(logs)
        text = '{"t":"%s","id":%s,"%s":%s,"logs":%s,"durationMs":%.3f%s}' % (
            kind, json_encode(inv_id), 'result' if kind == 'result' else 'error', payload_json, logs_json, ms,
            ',"exiting":true' if exiting else '')
        if len(text) > MAX_FRAME_BYTES - 64:
            text = self.error_text(inv_id, {'type': 'Function.ResponseSizeTooLarge', 'message': 'the response is too large to relay', 'stack': ''},
                                   '', ms)
        self.send_json(text)

    def error_text(self, inv_id, err, logs, ms):
        return '{"t":"error","id":%s,"error":%s,"logs":%s,"durationMs":%.3f}' % (json_encode(inv_id), json_encode_ascii(err), json_encode_ascii(logs), ms)

    def init_error(self, etype, message, stack=''):
        self.phase = 'failed'
        self.drain_logs()
        tail = self.logs.drain()[-4096:]
        err = {'type': 'InitError', 'message': ('%s: %s' % (etype, message) if etype else message)[:32768], 'stack': stack or tail}
        self.ch.send({'t': 'init_error', 'error': err})
        self.answer_pending_unspecialized()

    def answer_pending_unspecialized(self):
        if self.pending is not None:
            msg, self.pending = self.pending, None
            self.send_json(self.error_text(str(msg.get('id')), {'type': 'InitError', 'message': 'instance is not specialised', 'stack': ''}, '', 0))

    def on_daemon(self):
        try:
            data = os.read(self.fd, 1 << 20)  # fd 3 stays blocking: read only when readable
        except InterruptedError:
            return
        except OSError:
            data = b''
        if not data:
            os._exit(0)
        self.inbuf += data
        while len(self.inbuf) >= 4:
            n = int.from_bytes(self.inbuf[:4], 'big')
            if n > MAX_FRAME_BYTES:
                os._exit(2)
            if len(self.inbuf) < 4 + n:
                return
            msg = json.loads(bytes(self.inbuf[4:4 + n]))
            del self.inbuf[:4 + n]
            t = msg.get('t') if isinstance(msg, dict) else None
            if t == 'specialize':
                self.specialize(msg)
            elif t == 'invoke':
                self.invoke(msg)
            else:
                os._exit(2)  # the daemon is trusted; anything else means a broken channel

    def specialize(self, msg):
        if self.phase != 'generic':
            self.ch.send({'t': 'init_error', 'error': {'type': 'InitError', 'message': 'instance is already specialised', 'stack': ''}})
            return
        self.spec = msg
        self.started = time.perf_counter()
        path = os.path.join(self.code_dir, 'bootstrap')
        env = lambda_env(msg, self.code_dir, '%s:%d' % (HOST, PORT))
        problem = self.spawn(path, env, msg.get('userns') is True)
        if problem is not None:
            self.init_error('Runtime.InvalidEntrypoint', problem)
            return
        self.phase = 'init'

    def spawn(self, path, env, userns=False):
        """Starts the bootstrap (with userns: as root of the user namespace, the relay too); returns why not, or None."""
        started = start_bootstrap(path, env, self.code_dir, userns)
        if isinstance(started, str):
            return started
        self.pid, self.log_fd = started
        self.decoder = codecs.getincrementaldecoder('utf-8')('replace')
        self.sel.register(self.log_fd, selectors.EVENT_READ, 'logs')
        return None

    def invoke(self, msg):
        if self.phase in ('generic', 'failed'):
            self.pending = msg
            self.answer_pending_unspecialized()
            return
        self.pending = msg
        if self.phase == 'ready' and self.parked is not None:
            conn, self.parked = self.parked, None
            conn.waiting = False
            self.hand_out(conn)

    def hand_out(self, conn):
        msg, self.pending = self.pending, None
        inv_id = str(msg.get('id'))
        budget = msg.get('budgetMs')
        deadline = int(time.time() * 1000 + budget) if isinstance(budget, (int, float)) else int(msg.get('deadline') or 0)
        try:
            body = json_encode(msg.get('event')).encode('utf-8', 'surrogatepass')
        except ValueError:
            body = json_encode_ascii(msg.get('event')).encode()
        name = str(self.spec.get('name', ''))
        region = lambda_env(self.spec, self.code_dir, '')['AWS_REGION']
        headers = [('Lambda-Runtime-Aws-Request-Id', inv_id), ('Lambda-Runtime-Deadline-Ms', str(deadline)),
                   ('Lambda-Runtime-Invoked-Function-Arn', 'arn:aws:lambda:%s:%s:function:%s' % (region, ACCOUNT_ID, name)),
                   ('Lambda-Runtime-Trace-Id', trace_id())]
        self.current = (inv_id, time.perf_counter())
        self.phase = 'invoking'
        conn.respond(200, body, headers)
        self.flush(conn)

    # --- the bootstrap's side ----------------------------------------------------------------

    def drain_logs(self):
        if self.log_fd < 0:
            return
        while True:
            try:
                b = os.read(self.log_fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                b = b''
            if not b:
                self.sel.unregister(self.log_fd)
                os.close(self.log_fd)
                self.log_fd = -1
                self.logs.append(self.decoder.decode(b'', True))
                return
            self.logs.append(self.decoder.decode(b))

    def on_request(self, conn, req):
        path = req.path.split('?', 1)[0]
        if not path.startswith(PREFIX):
            return conn.respond_error(404, 'InvalidRequestFormat', 'no such resource: %s' % path[:200])
        rest = path[len(PREFIX):].split('/')
        if rest == ['invocation', 'next']:
            if req.method != 'GET':
                return conn.respond_error(405, 'InvalidRequestFormat', 'use GET for /runtime/invocation/next')
            return self.next(conn)
        if rest == ['init', 'error']:
            if req.method != 'POST':
                return conn.respond_error(405, 'InvalidRequestFormat', 'use POST for /runtime/init/error')
            return self.post_init_error(conn, req)
        if len(rest) == 3 and rest[0] == 'invocation' and rest[2] in ('response', 'error'):
            if req.method != 'POST':
                return conn.respond_error(405, 'InvalidRequestFormat', 'use POST for /runtime/invocation/{id}/%s' % rest[2])
            return self.post_outcome(conn, req, rest[1], rest[2])
        return conn.respond_error(404, 'InvalidRequestFormat', 'no such resource: %s' % path[:200])

    def forbidden(self, conn, to, why):
        names = {'generic': 'Idle', 'init': 'Initializing', 'ready': 'Ready', 'invoking': 'Invoking', 'failed': 'InitFailed'}
        conn.respond_error(403, 'InvalidStateTransition', 'State transition from %s to %s failed for runtime. Error: %s' % (names[self.phase], to, why))

    def next(self, conn):
        if self.phase == 'init':
            self.phase = 'ready'
            self.ch.send({'t': 'specialized', 'initMs': (time.perf_counter() - self.started) * 1e3})
        if self.phase != 'ready':
            why = 'invocation %s has no response or error yet' % self.current[0] if self.phase == 'invoking' else 'the runtime is not running'
            return self.forbidden(conn, 'Ready', why)
        if self.parked is not None and self.parked is not conn:
            return self.forbidden(conn, 'Ready', 'another request for the next invocation is waiting')
        if self.pending is not None:
            return self.hand_out(conn)
        self.parked = conn
        conn.waiting = True

    def post_init_error(self, conn, req):
        if self.phase != 'init':
            return self.forbidden(conn, 'InitError', 'init errors are accepted only before the first request for an invocation')
        conn.respond(202, ACCEPTED)
        err = parse_error(req.body, req.headers.get('lambda-runtime-function-error-type', ''))
        self.init_error(err['type'], err['message'], err['stack'])

    def post_outcome(self, conn, req, raw_id, kind):
        if self.phase != 'invoking':
            return self.forbidden(conn, 'Invocation' + kind.capitalize(), 'no invocation is in progress')
        inv_id, start = self.current
        if unquote(raw_id) != inv_id:
            return conn.respond_error(400, 'InvalidRequestID', 'Invalid request ID')
        self.current = None
        self.phase = 'ready'
        if req.too_large:
            err = {'type': 'Function.ResponseSizeTooLarge',
                   'message': 'Response payload size exceeded maximum allowed payload size (%d bytes).' % MAX_PAYLOAD_BYTES, 'stack': ''}
            self.reply('error', inv_id, json_encode_ascii(err), start)
            return conn.respond_error(413, 'RequestEntityTooLarge', 'Exceeded maximum allowed payload size (%d bytes).' % MAX_PAYLOAD_BYTES,
                                      close=req.close)
        if kind == 'error':
            err = parse_error(req.body, req.headers.get('lambda-runtime-function-error-type', ''))
            self.reply('error', inv_id, json_encode_ascii(err), start)
        else:
            self.reply('result', inv_id, result_json(req.body), start)
        conn.respond(202, ACCEPTED)

    def on_exit(self, status):
        if os.WIFSIGNALED(status):
            how, sig = 'signal %d' % os.WTERMSIG(status), os.WTERMSIG(status)
        else:
            how, sig = 'exit status %d' % os.WEXITSTATUS(status), 0
        self.pid = -1
        if self.phase == 'init':
            self.init_error('Runtime.ExitError', 'the bootstrap exited before asking for an invocation (%s)' % how)
        elif self.phase == 'invoking' and sig == signal.SIGKILL:
            os._exit(137)  # no reply: the daemon tells an OOM kill from the instance's cgroup
        elif self.phase == 'invoking':
            inv_id, start = self.current
            err = {'type': 'RuntimeExit', 'message': 'Runtime.ExitError: the bootstrap exited during the invocation (%s)' % how, 'stack': ''}
            self.reply('error', inv_id, json_encode_ascii(err), start, exiting=True)
            os._exit(0)
        elif self.phase != 'failed':
            self.drain_logs()
            os._exit(0)

    # --- the loop ----------------------------------------------------------------------------

    def flush(self, conn):
        done = conn.flush()
        key = self.sel.get_key(conn.sock)
        want = selectors.EVENT_READ | (0 if done else selectors.EVENT_WRITE)
        if key.events != want:
            self.sel.modify(conn.sock, want, conn)
        if done and (conn.closing or (conn.close_after and not conn.waiting)):
            self.drop(conn)

    def drop(self, conn):
        if self.parked is conn:
            self.parked = None
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def on_conn(self, conn, events):
        if events & selectors.EVENT_WRITE:
            self.flush(conn)
            if conn.closing and not conn.out:
                return
        if not events & selectors.EVENT_READ:
            return
        try:
            data = conn.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b''
        if not data:
            return self.drop(conn)
        try:
            reqs = conn.feed(data)
        except BadRequest as e:
            conn.respond(e.status, error_body(e.error_type, str(e)), close=True)
            return self.flush(conn)
        for req in reqs:
            self.on_request(conn, req)
            conn.close_after = conn.close_after or req.close
        if conn.sock.fileno() >= 0:
            self.flush(conn)

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.on_exit(status)

    def run(self):
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(self.fd, selectors.EVENT_READ, 'daemon')
        self.sel.register(self.listener, selectors.EVENT_READ, 'listen')
        self.sel.register(wake_r, selectors.EVENT_READ, 'wake')
        self.ch.send({'t': 'ready', 'runtime': 'provided', 'pid': os.getpid()})
        while True:
            for key, events in self.sel.select():
                what = key.data
                if what == 'daemon':
                    self.on_daemon()
                elif what == 'listen':
                    self.accept()
                elif what == 'logs':
                    self.drain_logs()
                elif what == 'wake':
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self.reap()
                elif isinstance(what, Conn):
                    self.on_conn(what, events)

    def accept(self):
        while True:
            try:
                s, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            conn = Conn(s, MAX_PAYLOAD_BYTES)
            self.sel.register(s, selectors.EVENT_READ, conn)


def warm_up():
    """Nothing to pre-load beyond the imports (the zygote has run them)."""


def serve(fd=3, code_dir='/code', port=PORT):
    """Serves until the daemon closes fd 3. Never returns normally."""
    global PORT
    PORT = port  # noqa
    listener = listen(HOST, port)
    Relay(fd, code_dir, listener).run()


if __name__ == '__main__':
    args = sys.argv[1:]
    serve(3, args[args.index('--code') + 1] if '--code' in args else '/code',
          int(args[args.index('--port') + 1]) if '--port' in args else PORT)
    os._exit(0)
