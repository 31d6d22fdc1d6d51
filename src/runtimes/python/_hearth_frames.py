"""Frame reader and writers of Hearth's Python shim (shim.py).

The framed protocol of src/runtimes/protocol.ts (u32 big-endian length + UTF-8 JSON) on one
socket fd. Standard library only. Named ``_hearth_*`` and imported by shim.py before the
function's code directory is on ``sys.path``, so a function's own module of the same name can
never stand in for it.
"""

import json
import os

MAX_FRAME_BYTES = 16 * 1024 * 1024

json_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(',', ':')).encode
json_encode_ascii = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(',', ':')).encode


class Channel:
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
            self.send_json(json_encode(obj))
        except (UnicodeEncodeError, ValueError):
            self.send_json(json_encode_ascii(obj))



class DiscardChannel:
    """A channel whose frames are encoded like real ones, then dropped (the shim's warm-up)."""

    def send(self, obj):
        self.send_json(json_encode(obj))

    def send_json(self, text):
        text.encode('utf-8')
