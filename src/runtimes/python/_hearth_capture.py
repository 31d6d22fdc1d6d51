"""Log capture and error descriptions of Hearth's Python shim (shim.py).

Stand-ins for sys.stdout / sys.stderr that append to one log buffer (drained into each reply),
the handler's ``context`` argument and exceptions described as {type, message, stack}. Standard
library only. Named ``_hearth_*`` and imported by shim.py before the function's code directory is
on ``sys.path``, so a function's own module of the same name can never stand in for it.
"""

import io
import time
import traceback

MAX_LOG_BYTES = 256 * 1024
MAX_MESSAGE_CHARS = 32 * 1024
MAX_STACK_CHARS = 64 * 1024


class LogBuffer:
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


class Capture(io.TextIOBase):
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



def truncate(s, limit):
    return s if len(s) <= limit else s[:limit] + '...[truncated]'


def describe(exc, skip_frames=0):
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
        return {'type': etype, 'message': truncate(message, MAX_MESSAGE_CHARS),
                'stack': truncate(stack, MAX_STACK_CHARS)}
    except BaseException:
        return {'type': 'Exception', 'message': 'unprintable exception', 'stack': ''}
