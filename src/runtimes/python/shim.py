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

This module is the main loop; the frame reader and writers are in ``_hearth_frames`` and the log
capture, the handler's context and error descriptions in ``_hearth_capture``, both beside this
file. They are imported here, from this file's directory, when the shim is imported (in the
zygote: before it forks), long before the function's code directory goes on ``sys.path``.
"""

import json
import os
import sys
import time

# /code is read-only: importing must not try (and fail) to write __pycache__ there.
sys.dont_write_bytecode = True

_HERE = os.path.dirname(os.path.abspath(__file__))
# Ahead of anything else on sys.path (standalone under -I, this directory is not on it at all).
sys.path.insert(0, _HERE)
try:
    from _hearth_capture import (MAX_LOG_BYTES, MAX_MESSAGE_CHARS, MAX_STACK_CHARS, Capture, Context, LogBuffer,
                                 describe, truncate)
    from _hearth_frames import MAX_FRAME_BYTES, Channel, DiscardChannel, json_encode
    from _hearth_identity import become_root, warm_up_identity
    # MAX_FRAME_BYTES, MAX_LOG_BYTES: unused here, kept as the shim module's attributes.
finally:
    sys.path.remove(_HERE)

MAX_RESULT_BYTES = 6 * 1024 * 1024
DEFAULT_CODE_DIR = '/code'


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
        self.logs = LogBuffer()
        self.spec = None
        self.handler = None
        self.pid = os.getpid()

    def init_error(self, message, stack=''):
        self.ch.send({'t': 'init_error', 'error': {'type': 'InitError',
                                                  'message': truncate(message, MAX_MESSAGE_CHARS),
                                                  'stack': truncate(stack, MAX_STACK_CHARS)}})

    def specialize(self, msg):
        if self.spec is not None:
            return self.init_error('instance is already specialised')
        self.spec = msg
        start = time.perf_counter()
        if msg.get('userns') is True:
            try:
                become_root()
            except OSError as exc:
                return self.init_error('cannot become root of the user namespace: %s' % exc)
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
            d = describe(e)
            return self.init_error('failed to import %s: %s: %s' % (modname, d['type'], d['message']), d['stack'])
        except BaseException as e:
            d = describe(e)
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
            error = describe(e, skip_frames=1)
            error['message'] = 'the handler ran out of memory (MemoryError: %s)' % error['message']
            error['type'] = 'OutOfMemory'
            return reply_error(error)
        except BaseException as e:
            return reply_error(describe(e, skip_frames=1))
        try:
            text = json_encode(result)
        except (TypeError, ValueError, RecursionError) as e:
            return reply_error({'type': 'SerializationError',
                                'message': 'handler result is not JSON-serialisable: %s' % (e,), 'stack': ''})
        if len(text) > MAX_RESULT_BYTES // 4 and len(text.encode('utf-8', 'surrogatepass')) > MAX_RESULT_BYTES:
            return reply_error({'type': 'ResultTooLarge',
                                'message': 'handler result is larger than %d bytes of JSON' % MAX_RESULT_BYTES,
                                'stack': ''})
        duration = (time.perf_counter() - start) * 1000
        # Splice the already-encoded result into the frame rather than encoding it twice.
        head = json_encode({'t': 'result', 'id': inv_id, 'logs': self.logs.drain(), 'durationMs': duration})
        self.ch.send_json(head[:-1] + ',"result":' + text + '}')


_WARM_UP_MODULE = '_hearth_warm_up'


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
    inst = _Instance(DiscardChannel(), DEFAULT_CODE_DIR)
    try:
        sys.stdout = Capture(inst.logs, '<stdout>', 1)
        sys.stderr = Capture(inst.logs, '<stderr>', 2)
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
        _warm_bytecode_path(module)
        # What specialize() does around the import: set and unset a variable (putenv, unsetenv),
        # chdir, the uid switch's calls without a change (-1 keeps each id), a ctypes call.
        os.environ['HEARTH_WARM_UP'] = '1'
        del os.environ['HEARTH_WARM_UP']
        os.chdir(os.getcwd())
        warm_up_identity()
        inst.spec = {'name': 'warm-up', 'memoryMb': 128}
        inst.handler = module.handler
        msg = json.loads(json_encode({'t': 'invoke', 'id': 'warm-up', 'event': {'name': 'w', 'n': 1},
                                       'deadline': time.time() * 1000 + 1000}))
        inst.invoke(msg)
        inst.handler = None
        inst.invoke(msg)  # the error reply path (describes an exception)
        try:
            raise ValueError('warm-up')
        except ValueError as e:
            describe(e, skip_frames=1)
    finally:
        sys.stdout, sys.stderr = saved


def _warm_bytecode_path(module):
    """The steps of importing a module from its .pyc (a deployed bundle has one, docs/registry.md),
    run in memory on a tiny code object: header, validation, unmarshalling."""
    try:
        import _frozen_importlib_external as ext  # importlib's own, always loaded: no new module
        data = ext._code_to_timestamp_pyc(compile('pass', module.__file__, 'exec'), 0, 0)
        ext._classify_pyc(data, _WARM_UP_MODULE, {})
        ext._validate_timestamp_pyc(data, 0, 0, _WARM_UP_MODULE, {})
        ext._compile_bytecode(memoryview(data)[16:], name=_WARM_UP_MODULE)
        ext.cache_from_source(module.__file__)
    except Exception:  # private helpers of this CPython: a warm-up only, never a failure
        pass


def serve(fd=3, code_dir=DEFAULT_CODE_DIR):
    """Serves the protocol on ``fd`` until the daemon closes it. Replaces sys.stdout/stderr."""
    try:
        os.set_blocking(fd, True)
    except OSError:
        pass
    # The function's environment arrives with specialize and nothing else is kept: emptied now (what
    # is left is CPython's LC_CTYPE), so specialise has nothing to unset.
    os.environ.clear()
    inst = _Instance(Channel(fd), code_dir)
    sys.stdout = Capture(inst.logs, '<stdout>', 1)
    sys.stderr = Capture(inst.logs, '<stderr>', 2)
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
