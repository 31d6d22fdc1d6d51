"""Hearth's Python zygote: a pre-initialised interpreter that forks generic Python instances.

Started once per daemon by the sandbox driver (src/sandbox/zygote.ts) inside a sandbox that keeps
root (no PID namespace, no seccomp), as `/usr/bin/python3 -I -S /hearth/runtimes/python/zygote.py`
with an empty environment. It preloads ctypes, the sandbox-entry library
(/hearth/native/hearth_sandbox.so) and the runtime shim -- never any function code.

Protocol on fd 3 (frames: 4-byte big-endian length + UTF-8 JSON):
  zygote -> daemon  {"t":"ready","pid":<host pid>,"shim":true|false}
  daemon -> zygote  {"t":"fork","id","uid","gid","tmpMb","hostname","nfds"[,"netns"][,"warmUp"][,"runtime"][,"init"][,"userns"]} sent in one sendmsg
                    with SCM_RIGHTS fds [instance socket, cgroup.procs fds..., netns fd] (nfds of them);
                    "netns": the index in that list of a network namespace fd the instance joins
                    (absent: a new, empty network namespace); "warmUp": true runs the shim's
                    warm_up() in the instance before it serves (a generic instance, not a cold start);
                    "runtime": "provided" serves the Runtime API relay (src/runtimes/provided)
                    instead of the Python shim, under the general seccomp profile;
                    "init": false runs the shim as PID 1 itself, without the reaper (benchmarks)
  zygote -> daemon  {"t":"forked","id","pid","forkMs"} (host pid; forkMs: time spent
                    forking, phasesMs: {join, unshare, fork, enter} in ms, for benchmarks) or {"t":"fork_error","id","message"}
  zygote -> daemon  {"t":"exited","id","pid","code","signal"} when a forked instance ends

Fork: the middle child joins the instance's cgroups, joins the prepared network namespace if one
was sent (setns, before unshare and long before seccomp, which refuses setns), unshares
mount/pid/ipc/uts namespaces (and net, when none was sent) and forks the instance (PID 1 of its namespace); the instance enters the sandbox (hearth_enter_instance:
/proc, /tmp, lo, hostname, uid/gid, no capabilities, no_new_privs, seccomp), makes the instance
socket its fd 3, closes everything else and forks the shim (warm-up, shim.serve(3)) as its only
child; PID 1 itself stays behind as a reaper of orphans (reap_until) and exits with the shim's status. The zygote closes its copies of
all received fds once the middle child is forked (or the request is refused). The zygote is a child subreaper, so
instances are reparented to it and it reports their exit. A child's failure never ends the zygote.

Options (argv): --module NAME (default "shim"), --module-path DIR (extra import dir, tests only).
"""

import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = "/hearth/native/hearth_sandbox.so"

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1


def _parse_args(argv):
    module, extra = "shim", None
    i = 0
    while i < len(argv):
        if argv[i] == "--module" and i + 1 < len(argv):
            module = argv[i + 1]
            i += 2
        elif argv[i] == "--module-path" and i + 1 < len(argv):
            extra = argv[i + 1]
            i += 2
        else:
            i += 1
    return module, extra


MODULE_NAME, EXTRA_PATH = _parse_args(sys.argv[1:])
sys.path.insert(0, HERE)
if EXTRA_PATH:
    sys.path.insert(0, EXTRA_PATH)

libc = ctypes.CDLL(None, use_errno=True)
sandbox = ctypes.CDLL(NATIVE, use_errno=True)
sandbox.hearth_enter_instance.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_char_p]
sandbox.hearth_enter_instance.restype = ctypes.c_int
sandbox.hearth_enter_instance_userns.argtypes = [
    ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)
]
sandbox.hearth_enter_instance_userns.restype = ctypes.c_int
sandbox.hearth_last_step.restype = ctypes.c_int
sandbox.hearth_step_name.argtypes = [ctypes.c_int]
sandbox.hearth_step_name.restype = ctypes.c_char_p
sandbox.hearth_seccomp_profile.argtypes = [ctypes.c_char_p]
sandbox.hearth_set_seccomp_profile.argtypes = [ctypes.c_int]
if sandbox.hearth_set_seccomp_profile(sandbox.hearth_seccomp_profile(b"python")) != 0:
    raise SystemExit("hearth_sandbox.so has no python seccomp profile")
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

try:
    runtime = __import__(MODULE_NAME)
    runtime_error = None
except Exception as exc:  # the zygote still starts; forks report the import error
    runtime = None
    runtime_error = "%s: %s" % (type(exc).__name__, exc)

# The `provided` runtime's Runtime API relay (src/runtimes/provided), forked when a fork request
# says "runtime": "provided"; preloaded here so its instances start as fast as Python ones.
PROVIDED_DIR = os.path.join(os.path.dirname(HERE), "provided")
sys.path.insert(1, PROVIDED_DIR)
try:
    provided_relay = __import__("runtime_api")
    provided_error = None
except Exception as exc:
    provided_relay = None
    provided_error = "%s: %s" % (type(exc).__name__, exc)
sys.path.remove(PROVIDED_DIR)  # loaded: Python functions' imports never look there


def warm_up_runtime():
    """Runs the runtime module's warm_up() if it has one; a failure only costs speed."""
    if runtime is not None and hasattr(runtime, "warm_up"):
        try:
            runtime.warm_up()
        except Exception:
            pass


warm_up_runtime()  # initialised once here, inherited by every fork

UNSHARE_FLAGS = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
UNSHARE_FLAGS_JOINED_NET = UNSHARE_FLAGS & ~CLONE_NEWNET


def frame(obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


def reap_until(shim_pid):
    """PID 1 of an instance, once the shim runs as its child: reaps every process that ends up its
    child (the handler's orphans are re-parented to PID 1) and returns the shim's exit status
    (128 + N for signal N), with which PID 1 exits, ending the namespace. Like native/init/hearth-init.cc."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            return 125
        if pid == shim_pid:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def instance_main(msg, sock_fd, report_fd, control):
    """The forked instance (PID 1 of its own PID namespace): forks the shim and reaps. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.detach()  # fd 3 is about to become the instance socket; never close it via this object
        if msg.get("runtime") == "provided":
            # A custom runtime's bootstrap may be any program: the general profile, not Python's.
            sandbox.hearth_set_seccomp_profile(sandbox.hearth_seccomp_profile(b"general"))
        t0 = time.perf_counter()
        step_out = ctypes.c_int(0)
        rc = sandbox.hearth_enter_instance_userns(
            int(msg.get("tmpMb", 64)), int(msg["uid"]), int(msg["gid"]), str(msg.get("hostname", "hearth")).encode(),
            -1, 1 if msg.get("userns") is True else 0, ctypes.byref(step_out)
        )
        if rc != 0:
            step = sandbox.hearth_step_name(step_out.value).decode()
            os.write(report_fd, ("E%s: %s" % (step, os.strerror(-rc))).encode())
            os._exit(1)
        module, module_name, module_error = runtime, MODULE_NAME, runtime_error
        if msg.get("runtime") == "provided":
            module, module_name, module_error = provided_relay, "runtime_api", provided_error
        if module is None:
            os.write(report_fd, ("Ecannot import %s: %s" % (module_name, module_error)).encode())
            os._exit(1)
        os.write(report_fd, b"Tenter=%.3f\n" % ((time.perf_counter() - t0) * 1e3))
        if sock_fd != 3:
            os.dup2(sock_fd, 3)
        else:
            os.set_inheritable(3, True)
        os.closerange(4, 1 << 20)  # also closes report_fd: the zygote sees EOF = entered
        if msg.get("init", True) is not False:
            shim_pid = os.fork()
            if shim_pid != 0:
                os._exit(reap_until(shim_pid))
        if module is runtime and msg.get("warmUp") is True:
            warm_up_runtime()  # before ready: a generic instance is handed out warm
        module.serve(3)
    except BaseException:
        pass
    os._exit(0)


def fork_instance(msg, fds, netns_index, control):
    """Returns the instance's host pid; raises on failure. Closes fds.

    fds[0] is the instance socket, fds[netns_index] (if not None) a network namespace to join, the
    others cgroup.procs files to write "0" to.
    """
    sock_fd = fds[0]
    netns_fd = fds[netns_index] if netns_index is not None else None
    cg_fds = [fd for i, fd in enumerate(fds) if i != 0 and i != netns_index]
    try:
        r, w = os.pipe()
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    try:
        mid = os.fork()
        if mid == 0:
            try:
                os.close(r)
                t0 = time.perf_counter()
                for fd in cg_fds:
                    os.write(fd, b"0")
                t1 = time.perf_counter()
                flags = UNSHARE_FLAGS
                if netns_fd is not None:
                    if libc.setns(netns_fd, CLONE_NEWNET) != 0:
                        e = ctypes.get_errno()
                        raise OSError(e, "setns network namespace: " + os.strerror(e))
                    os.close(netns_fd)  # the instance closes it anyway; nothing needs it after setns
                    flags = UNSHARE_FLAGS_JOINED_NET
                t1s = time.perf_counter()
                if libc.unshare(flags) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, "unshare: " + os.strerror(e))
                t2 = time.perf_counter()
                child = os.fork()
                if child == 0:
                    instance_main(msg, sock_fd, w, control)
                t3 = time.perf_counter()
                os.write(
                    w,
                    b"P%d\nTjoin=%.3f setns=%.3f unshare=%.3f fork=%.3f\n"
                    % (child, (t1 - t0) * 1e3, (t1s - t1) * 1e3, (t2 - t1s) * 1e3, (t3 - t2) * 1e3),
                )
                os.close(w)  # EOF now, not after this process's teardown
                os._exit(0)
            except BaseException as exc:
                try:
                    os.write(w, ("E%s\n" % exc).encode())
                finally:
                    os._exit(1)
    finally:
        os.close(w)
        for fd in fds:
            os.close(fd)
    chunks = []
    try:
        while True:
            b = os.read(r, 4096)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
    # the middle child has exited or is exiting: reap() collects it without waiting here
    report = b"".join(chunks).decode(errors="replace")
    pid = None
    errors = []
    phases = {}
    for line in report.split("\n"):
        if line.startswith("P"):
            pid = int(line[1:])
        elif line.startswith("T"):
            for kv in line[1:].split():
                k, _, v = kv.partition("=")
                phases[k] = float(v)
        elif line.startswith("E"):
            errors.append(line[1:])
        elif line:
            errors.append(line)
    if errors or pid is None:
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        raise RuntimeError("; ".join(errors) or "instance did not start")
    return pid, phases


def main():
    control = socket.socket(fileno=3)
    control.setblocking(True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ, "control")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    instances = {}  # pid -> id
    buf = b""
    fdq = []
    control.sendall(frame({"t": "ready", "pid": os.getpid(), "shim": runtime is not None}))
    gc.collect()
    gc.freeze()  # keep the preloaded heap's pages shared with the children

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            iid = instances.pop(pid, None)
            if iid is None:
                continue
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            control.sendall(frame({"t": "exited", "id": iid, "pid": pid, "code": code, "signal": sig}))

    while True:
        for key, _ in sel.select():
            if key.data == "wake":
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
                continue
            data, fds, _flags, _addr = socket.recv_fds(control, 1 << 16, 64)
            if not data:
                for fd in fds:
                    os.close(fd)
                os._exit(0)
            buf += data
            fdq.extend(fds)
            while len(buf) >= 4:
                (n,) = struct.unpack(">I", buf[:4])
                if len(buf) < 4 + n:
                    break
                msg = json.loads(buf[4 : 4 + n])
                buf = buf[4 + n :]
                if msg.get("t") != "fork":
                    continue
                nfds = int(msg.get("nfds", 1))
                mine, fdq = fdq[:nfds], fdq[nfds:]
                iid = msg.get("id")
                netns_index = msg.get("netns")
                problem = None
                if len(mine) < 1 or len(mine) < nfds:
                    problem = "expected %d fds, received %d" % (nfds, len(mine))
                elif netns_index is not None and (type(netns_index) is not int or not 1 <= netns_index < len(mine)):
                    problem = "bad netns fd index %r" % (netns_index,)
                if problem is not None:
                    for fd in mine:
                        os.close(fd)
                    control.sendall(frame({"t": "fork_error", "id": iid, "message": problem}))
                    continue
                t0 = time.perf_counter()
                try:
                    pid, phases = fork_instance(msg, mine, netns_index, control)
                except Exception as exc:
                    control.sendall(frame({"t": "fork_error", "id": iid, "message": str(exc)}))
                    continue
                instances[pid] = iid
                control.sendall(
                    frame({"t": "forked", "id": iid, "pid": pid, "forkMs": (time.perf_counter() - t0) * 1e3, "phasesMs": phases})
                )
                reap()


if __name__ == "__main__":
    main()
