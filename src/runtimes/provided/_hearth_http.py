"""The HTTP/1.1 side of Hearth's Runtime API relay (runtime_api.py): one non-blocking connection
from the function's `bootstrap` to 127.0.0.1:9001, its request parser and its response writer.

Only what the Lambda Runtime API's clients send: a request line, headers, a body framed by
Content-Length or chunked transfer coding, `Expect: 100-continue` (curl sends it for large
bodies), keep-alive. Standard library only. Everything here is untrusted input: header sizes and
body sizes are bounded; a malformed request gets a 400 and the connection is closed.
"""

import json
import socket

MAX_HEAD_BYTES = 64 * 1024
REASONS = {
    200: 'OK',
    202: 'Accepted',
    400: 'Bad Request',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    413: 'Request Entity Too Large',
    431: 'Request Header Fields Too Large',
    500: 'Internal Server Error',
}


class BadRequest(Exception):
    """A request that cannot be parsed; answered with `status` and the connection closed."""

    def __init__(self, status, error_type, message):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class Request:
    __slots__ = ('method', 'path', 'headers', 'body', 'too_large', 'close')

    def __init__(self, method, path, headers):
        self.method = method
        self.path = path
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = b''
        self.too_large = False  # the body exceeded the limit; its bytes were discarded
        self.close = False  # close the connection after answering


def error_body(error_type, message):
    return json.dumps({'errorMessage': message, 'errorType': error_type}, separators=(',', ':')).encode()


class Conn:
    """One client connection. `feed()` parses what arrived and returns complete requests."""

    def __init__(self, sock, body_limit):
        self.sock = sock
        self.body_limit = body_limit
        self.inbuf = bytearray()
        self.out = bytearray()
        self.req = None  # the request whose body is being read
        self.remaining = 0  # Content-Length bytes still to read (fixed-length body)
        self.chunked = False
        self.chunk_left = -1  # bytes left in the current chunk; -1: expecting a size line; -2: trailers
        self.parts = []
        self.size = 0
        self.closing = False  # close once `out` is flushed
        self.waiting = False  # a GET /next is parked on this connection
        self.close_after = False  # the client asked to close after its request is answered

    def feed(self, data):
        self.inbuf += data
        done = []
        while not self.closing:
            if self.req is None:
                end = self.inbuf.find(b'\r\n\r\n')
                if end < 0:
                    if len(self.inbuf) > MAX_HEAD_BYTES:
                        raise BadRequest(431, 'InvalidRequestFormat', 'request headers too large')
                    break
                head = bytes(self.inbuf[:end])
                del self.inbuf[:end + 4]
                self._start(head)
                if self.req is None:
                    continue
            if not self._body():
                break
            req = self.req
            if req.too_large:
                req.body = b''
            else:
                req.body = b''.join(self.parts)
            self.req, self.parts, self.size = None, [], 0
            done.append(req)
        return done

    def _start(self, head):
        lines = head.split(b'\r\n')
        while lines and lines[0] == b'':  # tolerate stray CRLFs between requests
            lines.pop(0)
        if not lines:
            return
        try:
            method, path, version = lines[0].decode('latin-1').split(' ')
        except ValueError:
            raise BadRequest(400, 'InvalidRequestFormat', 'malformed request line')
        if not version.startswith('HTTP/1.'):
            raise BadRequest(400, 'InvalidRequestFormat', 'unsupported HTTP version')
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.decode('latin-1').partition(':')
            if not sep or not name or name != name.strip():
                raise BadRequest(400, 'InvalidRequestFormat', 'malformed header line')
            headers[name.lower()] = value.strip()
        req = Request(method, path, headers)
        conn = headers.get('connection', '').lower()
        req.close = conn == 'close' or (version == 'HTTP/1.0' and conn != 'keep-alive')
        te = headers.get('transfer-encoding', '').lower()
        self.chunked = te == 'chunked'
        if te and not self.chunked:
            raise BadRequest(400, 'InvalidRequestFormat', 'unsupported transfer-encoding')
        self.remaining = 0
        self.chunk_left = -1
        if not self.chunked:
            cl = headers.get('content-length', '0') or '0'
            if not cl.isdigit():
                raise BadRequest(400, 'InvalidRequestFormat', 'invalid content-length')
            self.remaining = int(cl)
            if self.remaining > self.body_limit:
                req.too_large = True
        if headers.get('expect', '').lower() == '100-continue':
            if req.too_large:
                # a final answer instead of 100 Continue: the client does not send the body
                self.req = req
                self.remaining = 0
                req.close = True
                return
            self.out += b'HTTP/1.1 100 Continue\r\n\r\n'
        self.req = req

    def _take(self, n):
        chunk = bytes(self.inbuf[:n])
        del self.inbuf[:n]
        self.size += len(chunk)
        if self.size > self.body_limit:
            self.req.too_large = True
        if not self.req.too_large:
            self.parts.append(chunk)
        else:
            self.parts = []
        return len(chunk)

    def _body(self):
        """True once the current request's body is complete."""
        if not self.chunked:
            if self.remaining:
                self.remaining -= self._take(self.remaining)
            return self.remaining == 0
        while True:
            if self.chunk_left == -1 or self.chunk_left == -2:
                nl = self.inbuf.find(b'\r\n')
                if nl < 0:
                    if len(self.inbuf) > 4096:
                        raise BadRequest(400, 'InvalidRequestFormat', 'malformed chunk')
                    return False
                line = bytes(self.inbuf[:nl]).split(b';')[0].strip()
                del self.inbuf[:nl + 2]
                if self.chunk_left == -2:  # trailers, up to an empty line
                    if line == b'':
                        return True
                    continue
                try:
                    n = int(line, 16)
                except ValueError:
                    raise BadRequest(400, 'InvalidRequestFormat', 'malformed chunk size')
                self.chunk_left = -2 if n == 0 else n
                continue
            if self.chunk_left > 0:
                self.chunk_left -= self._take(self.chunk_left)
                if self.chunk_left > 0:
                    return False
            if len(self.inbuf) < 2:
                return False
            if self.inbuf[:2] != b'\r\n':
                raise BadRequest(400, 'InvalidRequestFormat', 'malformed chunk')
            del self.inbuf[:2]
            self.chunk_left = -1

    def respond(self, status, body=b'', headers=(), close=False):
        """Queues a response (sent by `flush`). `close`: the connection ends after it."""
        head = ['HTTP/1.1 %d %s' % (status, REASONS.get(status, 'Unknown'))]
        head.append('Content-Type: application/json')
        for k, v in headers:
            head.append('%s: %s' % (k, v))
        head.append('Content-Length: %d' % len(body))
        if close:
            head.append('Connection: close')
            self.closing = True
        self.out += ('\r\n'.join(head) + '\r\n\r\n').encode('latin-1')
        self.out += body

    def respond_error(self, status, error_type, message, close=False):
        self.respond(status, error_body(error_type, message), close=close)

    def flush(self):
        """Writes what it can; True when everything queued is sent."""
        while self.out:
            try:
                n = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self.out.clear()
                self.closing = True
                return True
            del self.out[:n]
        return True


def listen(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    s.setblocking(False)
    return s
