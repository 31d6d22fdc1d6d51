"""Hearth Python runtime shim.

Two ways in:

* The Python zygote does ``import shim`` while pre-initialising (this module does nothing at
  import beyond imports and definitions), then, in each forked and sandboxed child,
  ``shim.serve(3)``.
* Standalone: ``/usr/bin/python3 -I -S shim.py [--code DIR]`` serves fd 3.

fd 3 is a SOCK_STREAM socket to the daemon speaking the framed protocol of
src/runtimes/protocol.ts (u32 big-endian length + UTF-8 JSON): send ``ready``, then serve
``specialize`` once and ``invoke`` any number of times, one at a time. ``serve`` returns when the
daemon closes the socket. Standard library only; works without ``site`` (-S).
See docs/runtimes.md for the handler contract.
"""

import io
import json
import os
import sys
import time
import traceback

# /code is read-only: importing must not try (and fail) to write __pycache__ there.
sys.dont_write_bytecode = True

MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_RESULT_BYTES = 6 * 1024 * 1024
MAX_LOG_BYTES = 256 * 1024
MAX_MESSAGE_CHARS = 32 * 1024
MAX_STACK_CHARS = 64 * 1024
DEFAULT_CODE_DIR = '/code'

_json_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(',', ':')).encode
_json_encode_ascii = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(',', ':')).encode


class _LogBuffer:
    """Captured stdout+stderr since the last reply, capped at MAX_LOG_BYTES (approximately)."""

    __slots__ = ('parts', 'size', 'dropped')

    def __init__(self):
        self.parts = []
        self.size = 0
        self.dropped = 0

    def append(self, s):
        n = len(s)
        room = MAX_LOG_BYTES - self.size
        if n <= room:
            self.parts.append(s)
            self.size += n
            return
        if room > 0:
            self.parts.append(s[:room])
            self.size = MAX_LOG_BYTES
        self.dropped += n - max(room, 0)

    def drain(self):
        s = ''.join(self.parts)
        if self.dropped:
            s += '\n[hearth: log output truncated, %d characters dropped]\n' % self.dropped
        self.parts = []
        self.size = 0
        self.dropped = 0
        return s


class _BinaryCapture(io.RawIOBase):
    """``sys.stdout.buffer`` of a capture stream: bytes are decoded as UTF-8 into the logs."""

    def __init__(self, logs):
        super().__init__()
        self._logs = logs

    def writable(self):
        return True

    def write(self, b):
        self._logs.append(bytes(b).decode('utf-8', 'replace'))
        return len(b)


class _Capture(io.TextIOBase):
    """A text stream standing in for sys.stdout / sys.stderr that appends to the log buffer."""

    def __init__(self, logs, name, fd):
        super().__init__()
        self._logs = logs
        self._name = name
        self._fd = fd
        self.buffer = _BinaryCapture(logs)

    def fileno(self):
        # The real descriptor (/dev/null in a sandbox): for code that probes it or hands it to a
        # child process. Output written to it directly is not captured.
        return self._fd

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return 'utf-8'

    @property
    def errors(self):
        return 'replace'

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('write() argument must be str, not %s' % type(s).__name__)
        self._logs.append(s)
        return len(s)

    def flush(self):
        pass


class Context:
    """The ``context`` argument of a handler (Lambda-compatible names)."""

    __slots__ = ('aws_request_id', 'invocation_id', 'function_name', 'memory_limit_in_mb', 'deadline_ms')

    def __init__(self, invocation_id, function_name, memory_limit_in_mb, deadline_ms):
        self.aws_request_id = invocation_id
        self.invocation_id = invocation_id
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self.deadline_ms - time.time() * 1000))

    def __repr__(self):
        return 'Context(invocation_id=%r, function_name=%r, memory_limit_in_mb=%r)' % (
            self.invocation_id, self.function_name, self.memory_limit_in_mb)


class _Channel:
    """Blocking framed reads and writes on one socket fd."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, n):
        """Reads until ``n`` bytes are buffered; False at EOF."""
        while len(self.buf) < n:
            chunk = os.read(self.fd, max(65536, n - len(self.buf)))
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv(self):
        """The next message as a dict, or None at EOF (a truncated frame counts as EOF)."""
        if not self._fill(4):
            return None
        n = int.from_bytes(self.buf[:4], 'big')
        if n > MAX_FRAME_BYTES:
            raise ValueError('frame of %d bytes exceeds the limit' % n)
        if not self._fill(4 + n):
            return None
        body = bytes(self.buf[4:4 + n])
        del self.buf[:4 + n]
        msg = json.loads(body)
        if not isinstance(msg, dict):
            raise ValueError('frame is not a JSON object')
        return msg

    def send_json(self, text):
        try:
            body = text.encode('utf-8')
        except UnicodeEncodeError:  # lone surrogates: fall back to escapes
            body = text.encode('utf-8', 'backslashreplace')
        data = len(body).to_bytes(4, 'big') + body
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def send(self, obj):
        try:
            self.send_json(_json_encode(obj))
        except (UnicodeEncodeError, ValueError):
            self.send_json(_json_encode_ascii(obj))


def _truncate(s, limit):
    return s if len(s) <= limit else s[:limit] + '...[truncated]'


def _describe(exc, skip_frames=0):
    """{type, message, stack} of an exception, never raising itself."""
    try:
        etype = type(exc).__name__
        try:
            message = str(exc)
        except BaseException:
            message = '<unprintable %s>' % etype
        tb = exc.__traceback__
        for _ in range(skip_frames):
            if tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
        try:
            stack = ''.join(traceback.format_exception(type(exc), exc, tb))
        except BaseException:
            stack = ''
        return {'type': etype, 'message': _truncate(message, MAX_MESSAGE_CHARS),
                'stack': _truncate(stack, MAX_STACK_CHARS)}
    except BaseException:
        return {'type': 'Exception', 'message': 'unprintable exception', 'stack': ''}


def _parse_handler(handler):
    """``pkg/mod.fn`` or ``pkg.mod.fn`` -> ('pkg.mod', 'fn'), or None if malformed."""
    if not isinstance(handler, str) or '.' not in handler:
        return None
    mod, _, fn = handler.rpartition('.')
    if mod.endswith('.py'):
        mod = mod[:-3]
    parts = mod.replace('/', '.').split('.')
    if not fn or not all(p.isidentifier() for p in parts) or not fn.isidentifier():
        return None
    return '.'.join(parts), fn


class _Instance:
    def __init__(self, channel, code_dir):
        self.ch = channel
        self.code_dir = code_dir
        self.logs = _LogBuffer()
        self.spec = None
        self.handler = None
        self.pid = os.getpid()

    def init_error(self, message, stack=''):
        self.ch.send({'t': 'init_error', 'error': {'type': 'InitError',
                                                  'message': _truncate(message, MAX_MESSAGE_CHARS),
                                                  'stack': _truncate(stack, MAX_STACK_CHARS)}})

    def specialize(self, msg):
        if self.spec is not None:
            return self.init_error('instance is already specialised')
        self.spec = msg
        start = time.perf_counter()
        env = msg.get('env')
        # The runtime starts with an empty environment, but CPython's C-locale coercion (PEP 538)
        # adds LC_CTYPE at start-up: the function sees exactly its own env and nothing else.
        os.environ.clear()
        if isinstance(env, dict):
            for k, v in env.items():
                try:
                    os.environ[str(k)] = str(v)
                except (ValueError, OSError):  # NUL or '=' in a name
                    pass
        parsed = _parse_handler(msg.get('handler'))
        if parsed is None:
            return self.init_error('bad handler %s: expected "module.function" (e.g. "app.handler" or "pkg/mod.handler")'
                                   % json.dumps(msg.get('handler')))
        modname, fname = parsed
        if self.code_dir not in sys.path:
            sys.path.insert(0, self.code_dir)
        # A finder cached before the code was mounted (e.g. by the zygote) would list an empty dir.
        sys.path_importer_cache.pop(self.code_dir, None)
        try:
            os.chdir(self.code_dir)
        except OSError:
            pass
        top = modname.partition('.')[0]
        if top in sys.modules and sys.modules[top] is sys.modules.get(__name__):
            del sys.modules[top]  # the user's module is called like this one ("shim"): theirs wins
        try:
            __import__(modname)
            module = sys.modules[modname]
        except SystemExit as e:
            return self.init_error('the handler module exited the process while loading (exit code %r)' % (e.code,))
        except ModuleNotFoundError as e:
            if e.name is not None and (modname == e.name or modname.startswith(e.name + '.')):
                path = modname.replace('.', '/')
                return self.init_error('handler module not found: %s.py in %s' % (path, self.code_dir))
            d = _describe(e)
            return self.init_error('failed to import %s: %s: %s' % (modname, d['type'], d['message']), d['stack'])
        except BaseException as e:
            d = _describe(e)
            return self.init_error('failed to import %s: %s: %s' % (modname, d['type'], d['message']), d['stack'])
        fn = getattr(module, fname, None)
        if fn is None:
            return self.init_error("module %s has no attribute '%s'" % (modname, fname))
        if not callable(fn):
            return self.init_error("'%s' in module %s is not callable (it is %s)" % (fname, modname, type(fn).__name__))
        self.handler = fn
        self.ch.send({'t': 'specialized', 'initMs': (time.perf_counter() - start) * 1000})

    def invoke(self, msg):
        start = time.perf_counter()
        inv_id = msg.get('id')
        if not isinstance(inv_id, str):
            inv_id = str(inv_id)

        def reply_error(error, exiting=False):
            reply = {'t': 'error', 'id': inv_id, 'error': error, 'logs': self.logs.drain(),
                     'durationMs': (time.perf_counter() - start) * 1000}
            if exiting:
                reply['exiting'] = True  # the last reply: the process exits right after it
            self.ch.send(reply)

        if self.handler is None:
            return reply_error({'type': 'InitError', 'message': 'instance is not specialised', 'stack': ''})
        budget = msg.get('budgetMs')
        if isinstance(budget, (int, float)) and not isinstance(budget, bool):
            deadline = time.time() * 1000 + budget
        else:
            deadline = msg.get('deadline')
            if not isinstance(deadline, (int, float)):
                deadline = 0
        context = Context(inv_id, self.spec.get('name'), self.spec.get('memoryMb'), deadline)
        try:
            try:
                result = self.handler(msg.get('event'), context)
                if type(result).__name__ == 'coroutine':
                    import asyncio
                    result = asyncio.run(result)
            finally:
                if os.getpid() != self.pid:
                    os._exit(0)  # a child the handler forked returned here: it must not reply
        except SystemExit as e:
            code = e.code
            reply_error({'type': 'RuntimeExit', 'message': 'the handler exited the process (exit code %r)' % (code,),
                         'stack': ''}, exiting=True)
            os._exit(code if isinstance(code, int) else (0 if code is None else 1))
        except MemoryError as e:
            error = _describe(e, skip_frames=1)
            error['message'] = 'the handler ran out of memory (MemoryError: %s)' % error['message']
            error['type'] = 'OutOfMemory'
            return reply_error(error)
        except BaseException as e:
            return reply_error(_describe(e, skip_frames=1))
        try:
            text = _json_encode(result)
        except (TypeError, ValueError, RecursionError) as e:
            return reply_error({'type': 'SerializationError',
                                'message': 'handler result is not JSON-serialisable: %s' % (e,), 'stack': ''})
        if len(text) > MAX_RESULT_BYTES // 4 and len(text.encode('utf-8', 'surrogatepass')) > MAX_RESULT_BYTES:
            return reply_error({'type': 'ResultTooLarge',
                                'message': 'handler result is larger than %d bytes of JSON' % MAX_RESULT_BYTES,
                                'stack': ''})
        duration = (time.perf_counter() - start) * 1000
        # Splice the already-encoded result into the frame rather than encoding it twice.
        head = _json_encode({'t': 'result', 'id': inv_id, 'logs': self.logs.drain(), 'durationMs': duration})
        self.ch.send_json(head[:-1] + ',"result":' + text + '}')


_HERE = os.path.dirname(os.path.abspath(__file__))
_WARM_UP_MODULE = '_hearth_warm_up'


class _DiscardChannel:
    """A channel whose frames are encoded like real ones, then dropped."""

    def send(self, obj):
        self.send_json(_json_encode(obj))

    def send_json(self, text):
        text.encode('utf-8')


def warm_up():
    """Runs once through what a first specialise and invoke do, on throwaway objects.

    CPython initialises its compiler's state (the AST types) on the first compile from source,
    about 0.7 ms, and a module without bytecode (a bundle's .pyc files are made at deploy,
    docs/registry.md; none can be written to the read-only /code) is compiled from source. The
    zygote calls this before forking, so every instance inherits the initialised state; a generic
    instance calls it again before it says ready, so that its own copy-on-write page faults are
    not paid by the first request. Touches no state a function can see: os.environ, sys.path,
    sys.modules and the real stdout/stderr are left as they were.
    """
    saved = sys.stdout, sys.stderr
    inst = _Instance(_DiscardChannel(), DEFAULT_CODE_DIR)
    try:
        sys.stdout = _Capture(inst.logs, '<stdout>', 1)
        sys.stderr = _Capture(inst.logs, '<stderr>', 2)
        # An import like specialize()'s, of a module beside this file: the path finder, the
        # source loader and the compiler (no bytecode is written, sys.dont_write_bytecode).
        _parse_handler('warm/up.handler')
        sys.path.insert(0, _HERE)
        try:
            module = __import__(_WARM_UP_MODULE)
        finally:
            sys.path.remove(_HERE)
            sys.modules.pop(_WARM_UP_MODULE, None)
            sys.path_importer_cache.pop(_HERE, None)
        exec(compile('x = f"{1!r}"', '<hearth-warm-up>', 'exec'), {})  # should the module's .pyc exist
        inst.spec = {'name': 'warm-up', 'memoryMb': 128}
        inst.handler = module.handler
        msg = json.loads(_json_encode({'t': 'invoke', 'id': 'warm-up', 'event': {'name': 'w', 'n': 1},
                                       'deadline': time.time() * 1000 + 1000}))
        inst.invoke(msg)
        inst.handler = None
        inst.invoke(msg)  # the error reply path (describes an exception)
        try:
            raise ValueError('warm-up')
        except ValueError as e:
            _describe(e, skip_frames=1)
    finally:
        sys.stdout, sys.stderr = saved


def serve(fd=3, code_dir=DEFAULT_CODE_DIR):
    """Serves the protocol on ``fd`` until the daemon closes it. Replaces sys.stdout/stderr."""
    try:
        os.set_blocking(fd, True)
    except OSError:
        pass
    inst = _Instance(_Channel(fd), code_dir)
    sys.stdout = _Capture(inst.logs, '<stdout>', 1)
    sys.stderr = _Capture(inst.logs, '<stderr>', 2)
    inst.ch.send({'t': 'ready', 'runtime': 'python', 'pid': os.getpid()})
    while True:
        msg = inst.ch.recv()
        if msg is None:
            return
        t = msg.get('t')
        if t == 'specialize':
            inst.specialize(msg)
        elif t == 'invoke':
            inst.invoke(msg)
        else:
            raise ValueError('unexpected message %r' % (t,))


def main(argv):
    code_dir = DEFAULT_CODE_DIR
    if '--code' in argv:
        i = argv.index('--code')
        if i + 1 < len(argv):
            code_dir = argv[i + 1]
    serve(3, code_dir)


if __name__ == '__main__':
    main(sys.argv[1:])
    os._exit(0)
