"""How a session's shell is started: inside bubblewrap when it is available, else the documented weaker fallback.

bwrap (the strong path): new user, pid, ipc, uts and cgroup namespaces; no network namespace of the host unless the
environment is `unrestricted`; the host's system directories read-only (`/usr` and its merged-usr links, a few
files of `/etc`), a generated `/etc/passwd`; the session's directories bound at `/workspace`,
`/mnt/session/{uploads,outputs}` and `/tmp`, uploads and every file resource read-only. Nothing else of the host
is visible: no home directories, no host `/proc` (a fresh one for the sandbox's pid namespace), no runtime files
(with `environment_variable` credentials, the egress CA's certificate bundle, read-only; never its key).

Fallback (no bwrap, or `use_bwrap=False`): the shell runs on the host filesystem with its working directory in
the session's `/workspace` directory, under a small init that makes it a child subreaper (so every process it
starts stays in its tree and can be killed), with the same resource limits. It can see and signal whatever the
runtime's user can, and under `limited` networking only *cooperative* programs go through the egress proxy.
docs/toolset.md says what each mode guarantees.

Limits and the pids cgroup are applied without running any code of this runtime in the child between fork and
exec (a `preexec_fn` is unsafe while the runtime has threads: a fork copies locks other threads may hold). The
shell's command line is a chain of programs that each exec the next, so the process keeps one pid throughout:

    bash -p -c GATE loophost-gate FD   (only when the session has a pids cgroup)
      -> prlimit --as=... --cpu=... --fsize=... --nofile=... --core=0 --
      -> bwrap ... (or the fallback's init) -> the session's shell

`prlimit` (util-linux) sets the rlimits on itself, soft = hard so nothing below can raise them, and execs the
sandbox, which inherits them. The gate holds the chain until the process is in its cgroup: it blocks reading a
pipe whose only writer is the runtime, which writes the pid into `cgroup.procs` from the parent and then writes
`go`; the gate closes the pipe and execs the rest. Nothing has forked yet at that point, so every process of the
sandbox is born in the cgroup. If the runtime cannot place it, it closes the pipe unwritten, and the gate exits
(125) instead of running anything.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._confine import OUTPUTS, TMP, UPLOADS, WORKSPACE, under

log = logging.getLogger("loophost.toolset")

SANDBOX_UID = 1000
"""The sandbox's uid inside its user namespace (the runtime's uid outside); no capabilities."""
FORWARDER_PORT = 3128
SANDBOX_SOCKET = "/run/loophost/egress.sock"
SANDBOX_BUNDLE = "/run/loophost/ca-bundle.pem"
_ETC_FILES = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
)
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-process resource limits of everything a tool runs (rlimits, inherited through bwrap)."""

    memory_bytes: int = 4 << 30
    """RLIMIT_AS: address space of each process."""
    processes: int = 512
    """Processes (and threads) of the session's sandbox at once: a `pids` cgroup per shell when the runtime can
    create one (root with a cgroup pids controller); otherwise not enforced, and the toolset logs so."""
    cpu_seconds: int = 3600
    """RLIMIT_CPU of each process."""
    file_bytes: int = 1 << 30
    """RLIMIT_FSIZE: largest file a tool process may write."""
    open_files: int = 4096


def find_bwrap(explicit: str | None = None) -> str | None:
    """The first of `explicit`, `LOOPHOST_BWRAP`, `bwrap` on PATH that can actually build a sandbox here."""
    for candidate in (explicit, os.environ.get("LOOPHOST_BWRAP"), shutil.which("bwrap")):
        if candidate and os.access(candidate, os.X_OK) and _probe(candidate):
            return candidate
    return None


def _probe(candidate: str) -> bool:
    probe = [candidate, "--unshare-user", "--unshare-pid", "--unshare-net", "--ro-bind", "/usr", "/usr"]
    probe += [*_system_links(), "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        log.warning("bwrap at %s cannot create a sandbox here: %s", candidate, done.stderr.decode(errors="replace"))
        return False
    return True


def _system_links() -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything that decides how one session's shell is started."""

    fs: Path
    """Host directory holding the sandbox's own tree: fs/workspace, fs/mnt/session/{uploads,outputs}, fs/tmp."""
    private: Path
    """Runtime-only directory of the session (generated /etc/passwd, the egress socket)."""
    mounts: tuple[str, ...] = ()
    """Sandbox paths of read-only file resources."""
    host_network: bool = True
    egress_socket: Path | None = None
    """Under limited networking with bwrap: the proxy's unix socket, reached through a forwarder in the sandbox."""
    egress_port: int | None = None
    """Under limited networking in the fallback: the proxy's loopback TCP port (cooperative only)."""
    env: Mapping[str, str] = field(default_factory=dict)
    directories: tuple[tuple[str, bool], ...] = ()
    """More directories of `fs` bound at their sandbox paths, each (sandbox path, read-only): memory stores."""
    ca_bundle: Path | None = None
    """With `environment_variable` credentials: the trusted roots + the egress CA's certificate (never its key),
    bound read-only at `SANDBOX_BUNDLE`."""


def host_path(fs: Path, sandbox: str) -> Path:
    return fs / sandbox.lstrip("/")


_FORWARDER = r"""
import os, socket, sys, threading
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    client, _ = srv.accept()
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(sys.argv[2])
    except OSError:
        client.close()
        upstream.close()
        continue
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
"""
"""Runs inside a `limited` bwrap sandbox (no network namespace of the host): a loopback TCP port that relays to the
runtime's egress proxy on a unix socket bound into the sandbox. Binds before it backgrounds, so the shell starts
only once the port answers."""

_FALLBACK_INIT = r"""
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans stay in this tree
child = os.fork()
if child == 0:
    os.execv(sys.argv[1], sys.argv[1:])
status = 0
def descendants():
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    if pid == child:
        status = os.waitstatus_to_exitcode(st)
        for pid in descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
sys.exit(status if status >= 0 else 128 - status)
"""
"""The fallback's init: a child subreaper that reaps, and kills what is left when the shell exits."""


def shell_command(spec: SandboxSpec, bwrap: str | None, shell: str = "/bin/bash") -> list[str]:
    """The argv that starts the session's persistent shell."""
    shell_argv = [shell, "--noprofile", "--norc"]
    if bwrap is None:
        real_shell = shutil.which("bash") or "/bin/sh"
        return [sys.executable, "-S", "-c", _FALLBACK_INIT, real_shell, *shell_argv[1:]]
    args = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not spec.host_network:
        args.append("--unshare-net")
    args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL"]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    args += ["--ro-bind", "/usr", "/usr", *_system_links()]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    args += ["--ro-bind", str(spec.private / "passwd"), "/etc/passwd"]
    args += ["--ro-bind", str(spec.private / "group"), "/etc/group"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run", "--tmpfs", "/var"]
    args += ["--bind", str(host_path(spec.fs, WORKSPACE)), WORKSPACE]
    args += ["--bind", str(host_path(spec.fs, TMP)), TMP]
    args += ["--ro-bind", str(host_path(spec.fs, UPLOADS)), UPLOADS]
    args += ["--bind", str(host_path(spec.fs, OUTPUTS)), OUTPUTS]
    for mount in spec.mounts:
        if not under(mount, UPLOADS) and host_path(spec.fs, mount).is_file():
            args += ["--ro-bind", str(host_path(spec.fs, mount)), mount]
    for directory, read_only in spec.directories:
        args += ["--ro-bind" if read_only else "--bind", str(host_path(spec.fs, directory)), directory]
    if spec.ca_bundle is not None:
        args += ["--ro-bind", str(spec.ca_bundle), SANDBOX_BUNDLE]
    args += ["--chdir", WORKSPACE]
    if spec.egress_socket is not None:
        args += ["--bind", str(spec.egress_socket), SANDBOX_SOCKET]
        python = "/usr/bin/python3"
        if not os.path.exists(python):  # no system python: bind the runtime's interpreter read-only
            prefix = sys.base_prefix
            args += ["--ro-bind", prefix, prefix]
            python = os.path.join(prefix, "bin", os.path.basename(sys.executable))
        launcher = f'{python} -S -c "$1" {FORWARDER_PORT} {SANDBOX_SOCKET} && exec "$2" --noprofile --norc'
        return [*args, "--", "/bin/sh", "-c", launcher, "sh", _FORWARDER, shell]
    return [*args, "--", *shell_argv]


def write_identity(private: Path) -> None:
    """The sandbox's /etc/passwd and /etc/group: its own user only, never the host's accounts."""
    uid = gid = SANDBOX_UID
    (private / "passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nsandbox:x:{uid}:{gid}::/workspace:/bin/bash\n")
    (private / "group").write_text(f"root:x:0:\nsandbox:x:{gid}:\n")
    for name in ("passwd", "group"):
        os.chmod(private / name, 0o644)


def limit_command(limits: Limits) -> list[str]:
    """The `prlimit` prefix that sets `limits` (soft = hard, capped at this runtime's hard limits, which the child
    inherits) and execs the rest of the command line."""
    prlimit = shutil.which("prlimit") or shutil.which("prlimit", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if prlimit is None:
        raise RuntimeError("prlimit (util-linux) is not installed: the sandbox's resource limits cannot be applied")
    args = [prlimit]
    for option, which, value in (
        ("--as", resource.RLIMIT_AS, limits.memory_bytes),
        ("--cpu", resource.RLIMIT_CPU, limits.cpu_seconds),
        ("--fsize", resource.RLIMIT_FSIZE, limits.file_bytes),
        ("--nofile", resource.RLIMIT_NOFILE, limits.open_files),
        ("--core", resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(which)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        args.append(f"{option}={capped}")
    return [*args, "--"]


_GATE = 'unset PWD; gate=$1; shift; read -r -u "$gate" go; exec {gate}<&-; [[ $go == go ]] && exec "$@"; exit 125'
"""Waits for `go` on the fd in $1, closes it, then execs the rest of its arguments (see the module docstring).
bash, not sh: the fd number is the runtime's own and may have more than one digit. `-p`: no BASH_ENV, no
functions imported from the environment. `unset PWD`: the shell would export it, and so show the sandbox the host
path it was started in (bash's `exec` leaves only a harmless `SHLVL=0` behind)."""


def gate_command(fd: int) -> list[str]:
    """The gate that holds a command until the runtime has put it in its cgroup and written `go` to `fd`'s pipe."""
    bash = shutil.which("bash") or "/bin/bash"
    return [bash, "-p", "-c", _GATE, "loophost-gate", str(fd)]


def enter_cgroup(cgroup: Path, pid: int) -> None:
    """Move process `pid` (still held by its gate, so alone) into `cgroup`. Raises OSError when it cannot."""
    (cgroup / "cgroup.procs").write_text(str(pid))


def pids_cgroup(name: str, max_pids: int) -> Path | None:
    """A cgroup limiting the number of processes, or None when this runtime cannot create one."""
    candidates = [Path("/sys/fs/cgroup/pids")]  # cgroup v1
    v2 = Path("/sys/fs/cgroup")
    if "pids" in _read(v2 / "cgroup.subtree_control").split():
        candidates.append(v2)
    for base in candidates:
        path = base / "loophost" / name
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / "pids.max").write_text(str(max_pids))
            return path
        except OSError:
            continue
    return None


def remove_cgroup(path: Path | None) -> None:
    """Remove a shell's cgroup once the kernel has let go of its last (just killed) process."""
    for _ in range(100 if path is not None else 0):
        try:
            path.rmdir()  # type: ignore[union-attr]
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY while dying processes are still accounted to it
            time.sleep(0.01)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# process trees -------------------------------------------------------------------------------------------------
def _parents() -> dict[int, list[int]]:
    """Children of every live process (zombies left out: they are gone already, only not reaped yet)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if fields[0] == b"Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int) -> set[int]:
    """Every process below `root` (a sandbox's processes all stay below it: its pid namespace's init, or the
    fallback's subreaper, adopts orphans)."""
    children = _parents()
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_tree(root: int, keep: Iterable[int] = (), *, rounds: int = 50) -> int:
    """SIGKILL every descendant of `root` not in `keep`, again until none is left (a fork bomb keeps forking)."""
    keep = set(keep)
    killed = 0
    for _ in range(rounds):
        victims = descendants(root) - keep
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.005)
    return killed
