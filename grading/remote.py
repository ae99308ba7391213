"""The trusted side of the verification: a student's function as a remote callable.

:class:`Verifier` starts ``_verifier.py`` in a sandbox and loads the student's solution
cells there.  :class:`RemoteFunction` looks like the student's function to
``cvloss_ref.testing.check_loss``, which therefore runs *unchanged, in the grader's own
process*: it draws the inputs (from a seed chosen at grading time), sends them to the
sandbox, receives the output, and back-propagates through it with a custom autograd
function whose backward asks the sandbox for the gradients.  Replies are read with
``_verifier.decode`` (JSON and raw tensor bytes, or ``torch.load(weights_only=True)``:
never unpickled) and checked for type and shape.
"""

from __future__ import annotations

import inspect
import os
import selectors
import shutil
import struct
import time
from pathlib import Path

import torch

from ._verifier import LAZY_DYNAMO_FILE, PRINT_CAP_VARIABLE, decode, encode
from .sandbox import Limits, Sandbox

MAX_REPLY = 64 * 1024**2  # bytes of one reply from the sandbox
MAX_ERROR_CHARS = 500  # of an error message from the sandbox
#: Seconds on top of the call timeout to start the process (Python and torch, which take
#: tens of seconds on a busy machine) and to run one cell.
LOAD_GRACE_S = 120
#: Seconds on top of the call timeout to load one solution cell (the process is running
#: already: a cell that loops forever costs one time limit, not the start-up allowance).
CELL_GRACE_S = 10
_HERE = Path(__file__).resolve().parent


class RemoteError(RuntimeError):
    """The student's function failed in the sandbox (the message says how)."""


def _copy_afresh(source: Path, target: Path) -> None:
    """Copy ``source`` to a new file ``target`` in a sandbox's folder.  The last process
    there may have replaced ``target`` (by a symbolic link to a file of the grader's, which
    a plain copy would write through): it is removed first, and never followed."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    target.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, 0o644), "wb") as file:
        file.write(source.read_bytes())


class Verifier:
    """The sandboxed process that holds a submission's functions (``_verifier.py``).

    ``chunks`` are ``(label, source)`` pairs, the instructor's support code and each
    solution cell (labelled by its grade_id), loaded one at a time.  A chunk that raises
    is recorded in :attr:`load_errors` (label -> the error, with its line); one that ends
    the process (``os._exit``, a crash) is recorded too and left out when the process is
    started again, so that it costs only its own function.  What the student's code prints
    goes to the process's log, truncated at ``Limits.log_bytes`` (in the process, and by
    :class:`grading.sandbox.LogPump`); :attr:`output_dropped` counts the bytes of the log
    dropped, over every process started (not 0 whenever the output was cut).
    """

    def __init__(
        self,
        private_dir: Path,
        chunks: list[tuple[str, str]],
        *,
        unsafe: bool,
        timeout: float,
        limits: Limits | None = None,
        python: str | None = None,
    ) -> None:
        import sys

        self.private_dir = Path(private_dir)
        self.chunks = list(chunks)
        self.unsafe = unsafe
        self.timeout = timeout
        self.limits = limits or Limits()
        self.python = python or sys.executable
        self.sandbox: Sandbox | None = None
        self.load_errors: dict[str, str] = {}
        self.dead_reason: str | None = None
        self._ends_process: set[str] = set()  # labels of chunks that ended the process
        self._dropped_before = 0  # output dropped by the processes closed so far
        #: Functions a call or backward of which ran past the time limit, with the reason:
        #: they are not called again (a loop costs one time limit, not one per check).
        self.hung: dict[str, str] = {}
        self._calling: str | None = None  # the function whose call or backward runs

    # ------------------------------------------------------------------ process
    def _spawn(self) -> None:
        self.close()
        for script in ("_verifier.py", LAZY_DYNAMO_FILE):
            _copy_afresh(_HERE / script, self.private_dir / script)
        self.sandbox = Sandbox(
            [self.python, "-I", "_verifier.py"],
            self.private_dir,
            unsafe=self.unsafe,
            limits=self.limits,
            stderr_path=self.private_dir / "verifier.log",
            env={PRINT_CAP_VARIABLE: str(self.limits.log_bytes)},
        )
        self.sandbox.start(pipes=True)
        self.dead_reason = None

    def start(self) -> None:
        """Start the process and load every chunk that does not end it."""
        while True:
            self._spawn()
            try:  # an empty chunk first: a process that cannot start blames no cell
                self._request(
                    {"op": "load", "label": "", "code": ""}, timeout=self.timeout + LOAD_GRACE_S
                )
            except RemoteError as error:
                raise RemoteError(f"the verification process did not start: {error}") from None
            for index, (label, code) in enumerate(self.chunks):
                if label in self._ends_process:
                    continue
                # The first chunk (the instructor's support code, imports) may be slow on a
                # busy machine; a solution cell gets the cell time limit.
                grace = LOAD_GRACE_S if index == 0 else CELL_GRACE_S
                try:
                    reply = self._request(
                        {"op": "load", "label": label, "code": code},
                        timeout=self.timeout + grace,
                    )
                except RemoteError as error:
                    self._ends_process.add(label)
                    self.load_errors[label] = f"it ended the verification process ({error})"
                    break  # start again without it
                if reply.get("error"):
                    self.load_errors[label] = str(reply["error"])[:MAX_ERROR_CHARS]
            else:
                self.dead_reason = None
                return

    def alive(self) -> bool:
        return (
            self.sandbox is not None
            and self.sandbox.proc is not None
            and self.sandbox.proc.poll() is None
            and self.dead_reason is None
        )

    @property
    def output_dropped(self) -> int:
        """Bytes of printed output dropped from the log (beyond ``Limits.log_bytes`` per
        process), by every process started so far."""
        current = self.sandbox.log_dropped if self.sandbox is not None else 0
        return self._dropped_before + current

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.kill()
            self._dropped_before += self.sandbox.log_dropped
            self.sandbox = None

    def _die(self, reason: str) -> RemoteError:
        self.dead_reason = reason
        self.close()
        return RemoteError(reason)

    def _request(self, message: dict, timeout: float | None = None) -> dict:
        if self.sandbox is None or self.sandbox.proc is None:
            raise RemoteError(self.dead_reason or "the verification process is not running")
        proc = self.sandbox.proc
        data = encode(message)
        try:
            proc.stdin.write(struct.pack(">Q", len(data)) + data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise self._die("your code ended the verification process") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        header = self._read(proc, 8, deadline)
        (size,) = struct.unpack(">Q", header)
        if size > MAX_REPLY:
            raise self._die("your function's output is too large")
        payload = self._read(proc, size, deadline)
        try:
            reply = decode(payload)
        except Exception:
            raise self._die("the verification process sent an unreadable reply") from None
        if not isinstance(reply, dict):
            raise self._die("the verification process sent an unexpected reply")
        return reply

    def _read(self, proc, n: int, deadline: float) -> bytes:
        data = b""
        fd = proc.stdout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(data) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._die(f"your function ran longer than {self.timeout:g} s")
                if not selector.select(timeout=left):
                    continue
                chunk = fd.read1(n - len(data)) if hasattr(fd, "read1") else fd.read(n - len(data))
                if not chunk:
                    raise self._die(
                        "the verification process ended (your code exited, crashed, or ran "
                        "out of memory)"
                    )
                data += chunk
        return data

    # ------------------------------------------------------------------ calls
    def call(self, function: str, args, kwargs, grad, forbid) -> dict:
        if function in self.hung:
            raise RemoteError(self.hung[function])
        if not self.alive():
            raise RemoteError(self.dead_reason or "the verification process is not running")
        self._calling = function
        return self._timed(
            {
                "op": "call",
                "function": function,
                "args": args,
                "kwargs": kwargs,
                "grad": grad,
                "forbid": list(forbid),
            }
        )

    def backward(self, handle: int, cotangent: torch.Tensor) -> list:
        if not self.alive():
            raise RemoteError(self.dead_reason or "the verification process is not running")
        return self._timed({"op": "backward", "handle": handle, "cotangent": cotangent})

    def _timed(self, message: dict) -> dict:
        """A call or backward; a function that runs past the time limit is remembered in
        :attr:`hung` and refused from then on, without a process being started for it."""
        try:
            return self._request(message)
        except RemoteError as error:
            if self._calling and str(error).startswith("your function ran longer"):
                self.hung[self._calling] = (
                    f"{error} (in an earlier check; {self._calling} is not called again)"
                )
            raise


class _Remote(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, verifier, handle, *leaves):
        ctx.verifier = verifier
        ctx.handle = handle
        ctx.shapes = [(leaf.shape, leaf.dtype) for leaf in leaves]
        return value.clone()

    @staticmethod
    def backward(ctx, cotangent):
        reply = ctx.verifier.backward(ctx.handle, cotangent.detach().contiguous())
        if not reply.get("ok"):
            raise RemoteError(str(reply.get("error", "backward failed")))
        grads = reply.get("grads")
        if not isinstance(grads, list) or len(grads) != len(ctx.shapes):
            raise RemoteError("the gradients sent back do not match the inputs")
        checked = []
        for grad, (shape, dtype) in zip(grads, ctx.shapes):
            if not isinstance(grad, torch.Tensor) or grad.shape != shape:
                raise RemoteError("a gradient sent back has the wrong shape")
            checked.append(grad.to(dtype))
        return (None, None, None, *checked)


def _dependencies(fn, seen: dict[str, str]) -> None:
    """Source of ``fn`` and of the module-level functions of its module it uses."""
    module = getattr(fn, "__module__", "")
    for name in fn.__code__.co_names:
        other = fn.__globals__.get(name)
        if inspect.isfunction(other) and other.__module__ == module and other.__name__ not in seen:
            seen[other.__name__] = ""  # placeholder against cycles, filled below
            _dependencies(other, seen)
            seen[other.__name__] = inspect.getsource(other)
        elif isinstance(other, (int, float, str, bool)) and name not in seen:
            seen[name] = f"{name} = {other!r}"


def _shipped(value) -> dict:
    """A catalogue callable (a critic, a feature extractor) as source plus tensor state.

    Cases pass callables that ``torch.load(weights_only=True)`` cannot carry; those of
    the trusted catalogue (``cvloss_ref.*``) are sent as their source code, the source of
    the module-level functions they use, and, for an instance, its ``__dict__`` (tensors
    and numbers).  The sandbox rebuilds them (with ``torch`` and ``F`` in scope); what
    it computes with them is compared with the reference here, as every output is.
    """
    is_function = inspect.isfunction(value)
    owner = value if is_function else type(value)
    if not str(getattr(owner, "__module__", "")).startswith("cvloss_ref."):
        raise RemoteError(f"cannot send the argument {owner!r} to the verification process")
    seen: dict[str, str] = {}
    functions = (
        [value] if is_function else [f for f in vars(owner).values() if inspect.isfunction(f)]
    )
    for fn in functions:
        _dependencies(fn, seen)
    seen.pop(owner.__name__, None)
    source = "\n\n".join([*seen.values(), inspect.getsource(owner)])
    state = None if is_function else dict(vars(value))
    return {"__callable__": {"name": owner.__name__, "source": source, "state": state}}


def _plain(value):
    """Inputs as sent: detached tensors, also inside lists, tuples and dicts (the sandbox
    makes its own leaves), and catalogue callables as source."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if type(value) in (list, tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return type(value)((key, _plain(item)) for key, item in value.items())
    if callable(value) and not isinstance(value, type):
        return _shipped(value)
    return value


def tensors_in(value) -> list[torch.Tensor]:
    """Every tensor of ``value``, also inside lists, tuples and dicts, in order (the
    verification process walks its copy of the inputs in the same order)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value) in (list, tuple):
        return [tensor for item in value for tensor in tensors_in(item)]
    if isinstance(value, dict):
        return [tensor for item in value.values() for tensor in tensors_in(item)]
    return []


class RemoteFunction:
    """Calls ``function`` in the sandbox; usable wherever the student's function is.

    ``forbid`` lists what the function may not use: rules as
    :func:`grading.autograde.forbid_rule` builds them (the torch names, kernels and
    Python functions of each forbidden built-in), which the sandbox's ``_Forbid``
    enforces during the call; a bare name refuses the torch function of that name.
    """

    def __init__(self, verifier: Verifier, function: str, forbid=()) -> None:
        self.verifier = verifier
        self.function = function
        self.forbid = tuple(forbid)
        self.__name__ = function

    def __call__(self, *args, **kwargs):
        # The differentiated inputs: positions in the list of every tensor of the positional
        # arguments (a loss may take a list of feature maps, one per layer).
        flat = [tensor for a in args for tensor in tensors_in(a)]
        grad = [k for k, tensor in enumerate(flat) if tensor.requires_grad]
        reply = self.verifier.call(
            self.function,
            [_plain(a) for a in args],
            {k: _plain(v) for k, v in kwargs.items()},
            grad,
            self.forbid,
        )
        if not reply.get("ok"):
            raise RemoteError(str(reply.get("error", "failed"))[:MAX_ERROR_CHARS])
        kind = reply.get("kind")
        if kind == "number":
            return float(reply["value"])
        if kind == "tensors":  # a tuple of outputs, compared by value only
            values = reply.get("values")
            if not isinstance(values, list) or not all(isinstance(v, torch.Tensor) for v in values):
                raise RemoteError("the outputs sent back are not tensors")
            return tuple(values)
        if kind != "tensor":
            name = str(reply.get("type", "object"))
            name = name if name.isidentifier() else "object"
            return type(name, (), {})()
        value = reply.get("value")
        if not isinstance(value, torch.Tensor):
            raise RemoteError("the output sent back is not a tensor")
        leaves = [flat[k] for k in grad]
        if reply.get("requires_grad") and leaves:
            return _Remote.apply(value, self.verifier, int(reply["handle"]), *leaves)
        return value
