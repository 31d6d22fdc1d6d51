"""Compiles a deployed bundle's Python sources to bytecode, inside a sandbox.

Run by the daemon at deploy (src/registry/bytecode.ts) as
``/usr/bin/python3 -I -S /hearth/runtimes/python/compile_bundle.py`` in a fresh sandbox (no
network, uid 65534, memory and pids limits) with the unpacked bundle mounted read-only at /code.
It cannot write anywhere that matters: it sends each module's .pyc bytes over fd 3 and the daemon
checks the path and writes the file into the bundle's ``__pycache__`` before the bundle is stored.

Protocol on fd 3 (frames: 4-byte big-endian length + UTF-8 JSON):
  compiler -> daemon  {"t":"ready","tag":"cpython-311"}          (sys.implementation.cache_tag)
  daemon -> compiler  {"t":"go"}                                  (the code is mounted)
  compiler -> daemon  {"t":"pyc","path":"pkg/mod.py","data":"<base64 .pyc>"}   per module
  compiler -> daemon  {"t":"done","compiled":N,"failed":["bad.py", ...]}

With ``--check MODULE FUNCTION`` (MODULE relative to /code without extension, e.g. ``pkg/mod``)
it compiles nothing and answers, after ``go``, whether the module defines FUNCTION:
  compiler -> daemon  {"t":"handler","found":true|false|null,"file":"pkg/mod.py"}
It reads the module's syntax tree and never runs it: any name bound anywhere in the module counts
(a superset of its top-level names, so a definition is never missed). ``found`` is null when
that cannot be told without running it: a star import, ``global`` statements,
``globals()``/``setattr``/``exec``, a module ``__getattr__``, a syntax error (the import will
report it), or no ``.py`` source.

The .pyc files are timestamp-based (PEP 552 default): an instance's import checks the source's
mtime and size and falls back to the source if they differ. A module that does not compile
(syntax error, too deep) is skipped: the instance reports the error when it imports it.
"""

import ast
import base64
import importlib._bootstrap_external as bootstrap
import json
import os
import struct
import sys

CODE = "/code"
FD = 3
MAX_PYC_BYTES = 12 * 1024 * 1024  # a frame must stay under the protocol's 16 MiB


def send(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(FD, view):]


def recv():
    buf = b""
    while len(buf) < 4:
        chunk = os.read(FD, 4 - len(buf))
        if not chunk:
            return None
        buf += chunk
    (n,) = struct.unpack(">I", buf)
    body = b""
    while len(body) < n:
        chunk = os.read(FD, n - len(body))
        if not chunk:
            return None
        body += chunk
    return json.loads(body)


def sources():
    for root, dirs, files in os.walk(CODE, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


DYNAMIC_NAMES = {"globals", "vars", "setattr", "exec", "eval", "__import__", "__getattr__"}


MATCH_NAMES = tuple(getattr(ast, n) for n in ("MatchAs", "MatchStar") if hasattr(ast, n))


def bound_names(tree):
    """Every name the module binds anywhere (a superset of its top-level names, so that a
    definition is never missed: conditional ones, ``except … as``, ``with … as``, walrus, match
    captures); None when names may be bound dynamically."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            return None
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES:
            return None
        if isinstance(node, ast.Attribute) and node.attr == "modules":
            return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif MATCH_NAMES and isinstance(node, MATCH_NAMES) and node.name:
            names.add(node.name)
        elif isinstance(node, getattr(ast, "MatchMapping", ())) and node.rest:
            names.add(node.rest)
    return names


def check(module, function):
    for rel in (module + ".py", module + "/__init__.py"):
        path = os.path.join(CODE, rel)
        if os.path.isfile(path):
            break
    else:
        return {"t": "handler", "found": None, "file": None}
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
        names = bound_names(tree)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
        names = None
    return {"t": "handler", "found": None if names is None else function in names, "file": rel}


def main():
    send({"t": "ready", "tag": sys.implementation.cache_tag})
    msg = recv()
    if not msg or msg.get("t") != "go":
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        send(check(sys.argv[2], sys.argv[3]))
        return
    compiled = 0
    failed = []
    for path in sources():
        rel = os.path.relpath(path, CODE)
        try:
            st = os.lstat(path)
            with open(path, "rb") as f:
                source = f.read()
            code = compile(source, path, "exec", dont_inherit=True)
            data = bootstrap._code_to_timestamp_pyc(code, st.st_mtime, st.st_size)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
            failed.append(rel)
            continue
        if len(data) > MAX_PYC_BYTES:
            failed.append(rel)
            continue
        send({"t": "pyc", "path": rel, "data": base64.b64encode(bytes(data)).decode()})
        compiled += 1
    send({"t": "done", "compiled": compiled, "failed": failed[:100]})


if __name__ == "__main__":
    main()
