"""The switch to root inside the instance's user namespace, at `specialize` with `userns` (Python
instances and the `provided` relay; docs/sandbox.md, Identity).

The daemon has just mapped uid/gid 0 inside to the function's host uid/gid. Until now the process
ran as the unmapped pool ids, holding CAP_SETUID, CAP_SETGID and CAP_SETPCAP of its own user
namespace only; setresgid/setresuid(0) (glibc applies them to every thread) make it the function's
host uid, and hearth_drop_capabilities() empties the capability sets of this thread, the bounding
set included. Raises OSError on failure:
the caller reports an init error and never loads the function's code.
"""
import ctypes
import os

NATIVE = "/hearth/native/hearth_sandbox.so"
try:
    _drop = ctypes.CDLL(NATIVE).hearth_drop_capabilities  # in the zygote, before any fork: no lookup per instance
except OSError:  # not in a sandbox (unit tests of the shims): looked up when needed
    _drop = None


_getpid = ctypes.CDLL(None).getpid


def warm_up_identity():
    """become_root()'s calls without their effect, so that a forked instance has made its own copy
    of the memory they touch before it is specialised: setresgid/setresuid with -1 (no change),
    and a ctypes call (getpid)."""
    os.setresgid(-1, -1, -1)
    os.setresuid(-1, -1, -1)
    _getpid()


def become_root():
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    rc = (_drop or ctypes.CDLL(NATIVE).hearth_drop_capabilities)()
    if rc != 0:
        raise OSError(-rc, "cannot drop capabilities: %s" % os.strerror(-rc))
