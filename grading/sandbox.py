"""Run untrusted code in a bubblewrap sandbox with resource limits.

Each sandbox sees a read-only view of the system in which the course repository, the
home directories and ``/root`` are replaced by empty directories (only the Python
installation, the virtual environment and, where asked, the ``cvloss_ref`` package are
mounted back, read-only); it can write only to its private directory (mounted at
``/tmp/sandbox``, a private copy of one submission) and to a private, size-limited
``/tmp``; it has no network (its own network namespace holds only a loopback), its own
PID, IPC and UTS namespaces, and runs under an unprivileged user id of its own so that
the process limit applies.  Limits (``setrlimit`` before ``exec``): address space, CPU
time, file size (which bounds the files it writes), number of processes, no core
dumps.  A process's stderr is not a file it writes but a pipe that the
grader drains (:class:`LogPump`): the first ``Limits.log_bytes`` go to its log, the rest is
read and dropped, so that printing a lot neither fills the disk nor stalls the process nor
hits the file size limit (which raises ``OSError: File too large`` in the process that
writes past it).  A wall-clock timeout kills the whole sandbox:
``--die-with-parent`` plus the PID namespace mean that nothing it started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

from .course import ROOT

SANDBOX_DIR = "/tmp/sandbox"
BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
#: bubblewrap makes the namespaces; setpriv (util-linux) drops to the sandbox's own user.
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 6 * 1024**3  # address space per process (torch alone maps ~3 GiB)
    cpu_seconds: int = 600
    file_bytes: int = 64 * 1024**2  # largest file a sandboxed process may write
    processes: int = 256  # tasks (processes and threads) of the sandbox's user id
    tmp_bytes: int = 256 * 1024**2  # size of the private /tmp
    log_bytes: int = 1024**2  # of a process's stderr kept in its log (the rest is dropped)


#: Bytes the log pump reads at a time.
LOG_CHUNK_BYTES = 64 * 1024
#: Seconds to wait for the log pump to read what a process left in its pipe once it ended.
LOG_DRAIN_S = 10


class SandboxUnavailable(RuntimeError):
    pass


class LogPump(threading.Thread):
    """Drains a sandboxed process's stderr pipe (in the grader): the first ``limit`` bytes
    go to the log file at ``path``, the rest is read and counted in :attr:`dropped`.

    The process therefore never blocks on a full pipe and never writes a file itself, so
    that its output, however large, is truncated rather than fatal, and the disk holds at
    most ``limit`` bytes of it.  The thread ends when every writer has closed the pipe.
    """

    def __init__(self, pipe, path: Path, limit: int) -> None:
        super().__init__(name=f"log pump {Path(path).name}", daemon=True)
        self.pipe = pipe
        self.log = _open_log(Path(path))
        self.limit = limit if self.log is not None else 0
        self.kept = 0
        self.dropped = 0

    def run(self) -> None:
        fd = self.pipe.fileno()
        try:
            while chunk := os.read(fd, LOG_CHUNK_BYTES):
                keep = max(0, min(len(chunk), self.limit - self.kept))
                if keep:
                    self.log.write(chunk[:keep])
                self.kept += keep
                self.dropped += len(chunk) - keep
        except (OSError, ValueError):  # the pipe was closed under us: nothing more to read
            pass
        finally:
            for stream in (self.log, self.pipe):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass


def _open_log(path: Path):
    """A new log file at ``path``, or None if it cannot be made.  The folder is the
    sandbox's: whatever a sandboxed process left there (a symbolic link to a file of the
    grader's) is removed, and the file is created, never followed or reused."""
    try:
        path.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        return os.fdopen(os.open(path, flags, 0o600), "wb")
    except OSError:
        return None


def bwrap_works() -> bool:
    """Whether bubblewrap is installed and can create the namespaces we need, and setpriv
    (which every sandboxed command runs through) is there."""
    if not os.path.exists(BWRAP) or not os.path.exists(SETPRIV):
        return False
    try:
        done = subprocess.run(
            [BWRAP, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _hidden_roots() -> list[str]:
    """Directories replaced by empty ones inside the sandbox."""
    roots = {str(ROOT), "/root", "/home", os.path.expanduser("~")}
    return sorted(r for r in roots if r and r != "/" and os.path.isdir(r))


def _python_paths() -> list[str]:
    """What the virtual environment's Python needs to start."""
    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if p)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def bwrap_command(
    argv: list[str],
    private_dir: Path,
    uid: int,
    expose: list[str] = (),
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:
    """The bubblewrap command line that runs ``argv`` as ``uid`` in the sandbox."""
    limits = limits or Limits()
    cmd = [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # The private /tmp comes first: the repository or the virtual environment may live
    # under the host's /tmp (a CI checkout), and what is bound back below must not be
    # covered by it afterwards.
    cmd += ["--size", str(limits.tmp_bytes), "--perms", "01777", "--tmpfs", "/tmp"]
    # Shallow roots first, so that deeper ones are made inside them; a root under /tmp is
    # hidden already.
    roots = [r for r in _hidden_roots() if not _under(r, "/tmp")]
    for root in sorted(roots, key=len):
        cmd += ["--perms", "0755", "--tmpfs", root]
    hidden = [*roots, "/tmp"]
    made: set[str] = set(hidden)
    for path in [*_python_paths(), *expose]:
        path = os.path.abspath(path)
        if not any(_under(path, root) for root in hidden):
            continue  # visible already, read-only
        parents = []
        parent = os.path.dirname(path)
        while parent not in made and parent != "/":
            parents.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(parents):
            cmd += ["--perms", "0755", "--dir", directory]
            made.add(directory)
        cmd += ["--ro-bind", path, path]
        made.add(path)
    cmd += ["--bind", str(private_dir), SANDBOX_DIR, "--chdir", SANDBOX_DIR]
    cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    cmd += ["--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    # A clean environment: nothing of the grader's (tokens, paths) leaks in.
    cmd += ["--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
    cmd += [
        "--setenv",
        "HOME",
        SANDBOX_DIR,
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--setenv",
        "LANG",
        "C.UTF-8",
    ]
    for key, value in (env or {}).items():
        cmd += ["--setenv", key, value]
    cmd += ["--setenv", "MPLCONFIGDIR", "/tmp", "--setenv", "JUPYTER_RUNTIME_DIR", "/tmp"]
    cmd += ["--setenv", "IPYTHONDIR", "/tmp/ipython", "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    cmd += ["--setenv", "OMP_NUM_THREADS", "1", "--setenv", "PYTHONHASHSEED", "0"]
    # Drop to an unprivileged user of this sandbox's own: no capabilities, and the
    # process limit (which root ignores) applies.
    cmd += [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    cmd += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    return cmd + argv


def _limit(limits: Limits, sandboxed: bool):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sandboxed:  # without a user of its own the limit would count the grader's tasks
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        else:  # bubblewrap's --die-with-parent, without bubblewrap
            _die_with_parent()

    return apply


def _die_with_parent() -> None:
    """Have the kernel kill this process when the process that started it ends
    (``PR_SET_PDEATHSIG``), so that a grading worker that is killed takes it along."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def sandbox_uid() -> int:
    """An unprivileged user id for this grading process's sandboxes."""
    return 20000 + os.getpid() % 30000


class SandboxStopped(RuntimeError):
    """The batch this sandbox belongs to was stopped (:func:`stop_batch`)."""


#: Sandboxes started and not yet ended, in this process (for :func:`stop_batch`).
_LIVE: weakref.WeakSet = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()
#: Batches stopped in this process: their sandboxes refuse to start.
_STOPPED: set[str] = set()
_BATCH = threading.local()


@contextlib.contextmanager
def batch_tag(tag: str | None):
    """Sandboxes made by this thread inside the block belong to batch ``tag`` (a grading
    worker of a Dask cluster runs the submissions of several batches, one per thread)."""
    previous = getattr(_BATCH, "tag", None)
    _BATCH.tag = tag
    try:
        yield
    finally:
        _BATCH.tag = previous


def current_batch_tag() -> str | None:
    """The batch this thread's sandboxes belong to (:func:`batch_tag`), if any."""
    return getattr(_BATCH, "tag", None)


def stop_batch(tag: str) -> int:
    """Kill every live sandbox of batch ``tag`` in this process, and refuse to start new
    ones for it; returns how many were killed."""
    with _LIVE_LOCK:
        _STOPPED.add(tag)
        doomed = [box for box in _LIVE if box.tag == tag]
    for box in doomed:
        box.kill()
    return len(doomed)


class Sandbox:
    """One sandboxed process: ``start`` it, talk to it over pipes, ``kill`` it."""

    def __init__(
        self,
        argv: list[str],
        private_dir: Path,
        *,
        unsafe: bool = False,
        expose: list[str] = (),
        limits: Limits | None = None,
        stderr_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.private_dir = Path(private_dir)
        self.unsafe = unsafe
        self.limits = limits = limits or Limits()
        uid = sandbox_uid()
        self.env = dict(env or {})
        if unsafe:
            self.argv = argv
        else:
            if os.geteuid() == 0:
                os.chown(self.private_dir, uid, uid)
                for path in self.private_dir.rglob("*"):
                    os.chown(path, uid, uid, follow_symlinks=False)
            self.argv = bwrap_command(argv, self.private_dir, uid, list(expose), limits, self.env)
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen | None = None
        self.log: LogPump | None = None
        self.tag = current_batch_tag()

    @property
    def log_dropped(self) -> int:
        """Bytes of the process's stderr dropped beyond ``Limits.log_bytes`` (so far)."""
        return self.log.dropped if self.log is not None else 0

    def start(self, pipes: bool = False) -> subprocess.Popen:
        stderr = subprocess.PIPE if self.stderr_path else subprocess.DEVNULL
        env = dict(os.environ)
        if self.unsafe:
            env.update(HOME=str(self.private_dir), OMP_NUM_THREADS="1", **self.env)
        with _LIVE_LOCK:
            if self.tag is not None and self.tag in _STOPPED:
                raise SandboxStopped(f"batch {self.tag} was stopped")
            _LIVE.add(self)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stderr=stderr,
            cwd=self.private_dir,
            env=env,
            preexec_fn=_limit(self.limits, not self.unsafe),
            start_new_session=True,
        )
        if self.stderr_path:
            self.log = LogPump(self.proc.stderr, self.stderr_path, self.limits.log_bytes)
            self.log.start()
        if self.tag is not None and self.tag in _STOPPED:  # stopped while it was starting
            self.kill()
        return self.proc

    def _drain_log(self) -> None:
        """Let the log pump read what the ended process left in its pipe."""
        if self.log is not None:
            self.log.join(timeout=LOG_DRAIN_S)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None after killing it at the timeout."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._drain_log()
        return code

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self._drain_log()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def require_sandbox(unsafe: bool) -> None:
    """Refuse to grade without bubblewrap unless the instructor said so, and then warn."""
    if unsafe:
        warnings.warn(
            "--unsafe-no-sandbox: student code runs WITHOUT a sandbox, with your user's "
            "rights (only resource limits apply). Use this only on submissions you trust.",
            stacklevel=2,
        )
        return
    if not bwrap_works():
        raise SandboxUnavailable(
            "bubblewrap (the Debian package `bubblewrap`) or setpriv (`util-linux`) is "
            "missing, or bubblewrap cannot create namespaces here; install them, or pass "
            "--unsafe-no-sandbox to grade without a sandbox (not for untrusted code)"
        )
