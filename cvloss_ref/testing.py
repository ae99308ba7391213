"""Check an implementation of a loss against the reference, in value and in gradient.

This is the harness that exercise notebooks and the grader call::

    from cvloss_ref.testing import assert_loss_matches
    assert_loss_matches(my_cross_entropy, "cross_entropy",
                        forbid=[torch.nn.functional.cross_entropy])

For the named reference it runs every case of the loss's catalogue (random
inputs and named edge cases, kept in ``cvloss_ref/cases/``), calls the
implementation and the reference on the same inputs with the same keyword
arguments, and compares

* the output: type, shape, dtype, device and values (per-dtype tolerances of
  :data:`TOLERANCES`);
* the gradients with respect to the inputs a model produces (logits,
  probabilities, predicted boxes, ...; never labels), by back-propagating the
  same random cotangent through both;
* device-agnosticism: the implementation also runs on ``meta`` tensors (no
  data, no device), where a tensor created without ``device=`` or a value read
  back with ``.item()`` fails just as it would on a GPU; and on CUDA when one
  is present;
* delegation: calling the reference itself, or a torch function the exercise
  forbids, fails, however it was reached (another name, its ``nn.Module``, its
  ``torch.ops.aten`` op, the kernels it ends in: see :class:`CallGuard`).

On a mismatch :func:`assert_loss_matches` raises :class:`AssertionError` with a
message written for a student: the case, the expected and received values and,
where a known mistake explains the difference, a hint.
:func:`check_loss` runs the same checks and returns a :class:`CheckResult`
instead of raising, for graders that count passed cases.

Functions that are not losses of the catalogue (a non-maximum suppression, a
weight map, a fitted line, mined triplets) have no gradient to compare and no
catalogue cases: :func:`assert_outputs_match` compares their outputs with a
reference on cases the caller gives (``cvloss_ref.exercises`` builds those of
the course's exercises).  Both refuse forbidden calls through a
:class:`CallGuard`.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import inspect
import math
import sys
import threading
import types
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from ._catalogue import CATALOGUE, Case, LossSpec
from ._forbidden import canonical, label_of, rule_for

__all__ = [
    "TOLERANCES",
    "CallGuard",
    "CheckResult",
    "Failure",
    "LossMismatch",
    "OutputCase",
    "assert_loss_matches",
    "assert_outputs_match",
    "check_loss",
    "loss_names",
    "unguarded_copy",
]

#: Per-dtype tolerances, shared by ``tests/`` and :func:`assert_loss_matches`, so that
#: students are judged by the standard the reference is tested against.  float32 is
#: looser than ``torch.testing``'s default (1.3e-6) because correct formulations
#: (``log_softmax`` against ``x - logsumexp(x)``) differ by a few ulps; float64,
#: which every case also runs in, keeps the comparison sharp.
TOLERANCES: dict[torch.dtype, dict[str, float]] = {
    torch.float16: {"rtol": 1e-3, "atol": 1e-4},
    torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-3},
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.float64: {"rtol": 1e-7, "atol": 1e-7},
}

_MAX_SHOWN = 3  # values shown per tensor in a message


# --------------------------------------------------------------------------- results


@dataclass
class Failure:
    """One failed check: which case, in which dtype and on which device, and why."""

    case: str
    dtype: torch.dtype | None
    device: str
    message: str
    known_mistake: bool = False
    #: indices of the catalogued mistakes whose output (or gradient) equals the
    #: student's on this check; :func:`_choose_hints` picks the one shown.
    candidates: tuple[int, ...] = ()
    #: the hint to show when no catalogued mistake explains the failure.
    fallback_hint: str | None = None
    #: the case's note, shown after the hint.
    note: str = ""
    #: the function raised ``NotImplementedError``: it is a stub, not yet written.
    not_written: bool = False

    def where(self) -> str:
        dtype = str(self.dtype).replace("torch.", "") if self.dtype is not None else "-"
        return f'case "{self.case}" ({dtype}, {self.device})'

    def finish(self, hint: str | None) -> None:
        """Complete :attr:`message` with ``hint`` (or the fallback) and the case's note."""
        hint = hint if hint is not None else self.fallback_hint
        lines = [self.message]
        if hint:
            lines.append(f"  hint: {hint}")
        if self.note:
            lines.append(f"  (this case checks: {self.note})")
        self.message = "\n".join(lines)
        self.candidates, self.fallback_hint, self.note = (), None, ""


@dataclass
class CheckResult:
    """What :func:`check_loss` found.

    Attributes:
        name: the reference checked against.
        passed: cases (per dtype and device) that matched.
        failures: the checks that did not, first failure first.
        skipped: cases the reference itself rejects with the given parameters.
    """

    name: str
    passed: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: the keyword arguments the check passed on every case (``label_smoothing=0.1``).
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def message(self) -> str:
        """The report a student reads: the first failure in full, the others by name."""
        if self.ok:
            return f"{self.name}: all {len(self.passed)} checks passed"
        if all(f.not_written for f in self.failures):
            return (
                f"{self.name}: your function is not written yet (it raises "
                "NotImplementedError).\n  Replace `raise NotImplementedError()` in its solution "
                "cell by your code, run that cell, then this one again."
            )
        # A failure that a catalogued mistake explains teaches the most: show it first.
        first = next((f for f in self.failures if f.known_mistake), self.failures[0])
        given = f" with {_format_kwargs(self.params)}" if self.params else ""
        lines = [
            f"{self.name} does not match the reference on {first.where()}{given}:",
            first.message,
        ]
        others = [f.where() for f in self.failures if f is not first]
        if others:
            shown = ", ".join(others[:6]) + (", ..." if len(others) > 6 else "")
            lines.append(f"It also fails {len(others)} other check(s): {shown}.")
        lines.append(f"({len(self.passed)} check(s) passed.)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- the guard


#: The former private names of :func:`cvloss_ref._forbidden.canonical` and ``label_of``.
_canonical, _label = canonical, label_of


class _KernelWatch(TorchDispatchMode):
    """The dispatch-level half of a :class:`CallGuard`: sees every ATen (or torchvision)
    kernel that runs, after composite ops have decomposed, and reports the forbidden
    ones to the guard, whatever Python name, binding or ``torch.ops`` route led there."""

    def __init__(self, guard: CallGuard) -> None:
        super().__init__()
        self.guard = guard

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._dynamo.disable by default,
        # which imports Dynamo (about 1 s) the first time the mode runs; this mode is
        # never compiled, so it keeps the plain method.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        op = func.overloadpacket._qualified_op_name
        label = self.guard.kernels.get(op)
        if label is not None:
            self.guard._hit(label, f"the kernel {op}")
        return func(*args, **(kwargs or {}))


def _is_torch_builtin(function: Any) -> bool:
    """Whether ``function`` is a C function of torch (``torch._C._nn.l1_loss``)."""
    return str(getattr(function, "__module__", None) or "").startswith("torch")


def unguarded_copy(function: Callable) -> Callable:
    """``function`` under a code object of its own, which :class:`CallGuard` does not
    take for the original: to check the harness (or an exercise) with the reference
    itself, which the guard refuses by its code.

    Example:
        >>> import cvloss_ref
        >>> from cvloss_ref.testing import check_loss, unguarded_copy
        >>> check_loss(unguarded_copy(cvloss_ref.mse_loss), "mse_loss").ok
        True
    """
    code = function.__code__.replace(co_name=function.__name__ + "_copy")
    copy = types.FunctionType(
        code, function.__globals__, code.co_name, function.__defaults__, function.__closure__
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    return copy


class CallGuard(TorchFunctionMode):
    """Sees every call an implementation makes, to refuse the ones an exercise forbids.

    A forbidden built-in is recognised three ways, so that no other name reaches it
    (the table of :mod:`cvloss_ref._forbidden` says what each one is made of):

    * Python functions (the reference, ``torch.nn.functional.*``, torchvision's box
      ops, the private helpers that compute the same thing) by their code object,
      through ``sys.setprofile``, whatever name they were imported under, through
      ``getattr``, ``importlib``, ``functools.partial`` or ``exec``;
    * torch functions, tensor methods, ``torch._C._nn.*`` bindings and
      ``torch.ops.aten.*`` ops by a :class:`TorchFunctionMode`, by their canonical
      name, so forbidding ``torch.logsumexp`` also forbids ``x.logsumexp()`` and
      forbidding ``F.cross_entropy`` also forbids ``torch.ops.aten.cross_entropy_loss``;
    * the loss's kernels (``aten::nll_loss_forward`` for ``F.cross_entropy``) by a
      :class:`TorchDispatchMode`, which sees them after composite ops have decomposed.

    ``nn.Module`` classes are recognised by their ``forward`` (and their table entry),
    and a string names a torch function (or, when it resolves, what it names).

    :func:`assert_loss_matches` and :func:`assert_outputs_match` run every call of
    the checked function through a guard; use one directly to check other code.

    Args:
        reference: a function that is always forbidden (the reference the student
            must not delegate to), or ``None``.
        forbid: the other functions, classes or names to refuse.

    Attributes:
        hits: what the calls made through :meth:`call` used that is forbidden, in
            the order first seen (labels such as ``"torch.nn.functional.mse_loss"``).

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from cvloss_ref.testing import CallGuard
        >>> guard = CallGuard(forbid=[F.mse_loss, "torch.logsumexp"])
        >>> x = torch.zeros(3)
        >>> _ = guard.call(lambda a: a.logsumexp(0) + F.mse_loss(a, a), x)
        >>> guard.hits
        ['torch.logsumexp', 'torch.nn.functional.mse_loss']
    """

    def __init__(self, reference: Callable | None = None, forbid: Iterable[Any] = ()) -> None:
        super().__init__()
        self.codes: dict[Any, str] = {}
        self.torch_names: dict[str, str] = {}
        self.kernels: dict[str, str] = {}  # qualified op name -> label
        self.routes: dict[Any, str] = {}  # code of a helper -> its name, for messages
        self.hits: list[str] = []
        if reference is not None:
            ref = inspect.unwrap(reference)
            self.codes[ref.__code__] = (
                f"the reference cvloss_ref.{reference.__name__} itself (write your own)"
            )
        for item in forbid:
            self._add(item)

    def _add(self, item: Any) -> None:
        """Watch ``item`` (a function, a class or a name) and what its table entry lists."""
        rule = rule_for(item)
        for function in rule.functions:
            self.codes.setdefault(function.__code__, rule.label)
        for helper in rule.helpers:
            if helper.__code__ not in self.codes:
                self.codes[helper.__code__] = rule.label
                self.routes[helper.__code__] = label_of(helper)
        for name in rule.names:
            self.torch_names.setdefault(name, rule.label)
        for op in rule.ops:
            self.kernels.setdefault(op, rule.label)

    def _hit(self, label: str, route: str | None = None) -> None:
        """Record a use of the forbidden ``label`` (once), reached through ``route``."""
        if any(hit == label or hit.startswith(label + " (") for hit in self.hits):
            return
        self.hits.append(label if route is None else f"{label} (through {route})")

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            label = self.codes.get(frame.f_code)
            if label is not None:
                self._hit(label, self.routes.get(frame.f_code))
        elif event == "c_call" and _is_torch_builtin(arg):
            # A torch binding called with torch functions disabled
            # (torch._C.DisableTorchFunction): the torch-function mode does not see it, and
            # a loss without a kernel of its own (kl_div, l1_loss) leaves none to see.
            label = self.torch_names.get(canonical(getattr(arg, "__name__", "")))
            if label is not None:
                self._hit(label, f"the binding {arg.__module__}.{arg.__name__}")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        label = self.torch_names.get(canonical(name))
        if label is not None:
            same = canonical(name) == canonical(label.rsplit(".", 1)[-1])
            self._hit(label, None if same else name.split(".", 1)[0])
        return func(*args, **(kwargs or {}))

    def call(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Return ``fn(*args, **kwargs)``, recording in :attr:`hits` what it should not
        have called (exceptions from ``fn`` propagate)."""
        previous = sys.getprofile()
        # A C-level profiler (cProfile) cannot be put back from Python: leave it in
        # place and rely on the torch-function mode alone while it runs.
        profile = previous is None or callable(previous)
        if profile:
            sys.setprofile(self._profile)
        try:
            # The dispatch mode sees kernels only while fn runs: the backward that the
            # harness runs afterwards (through allowed ops' backward kernels) is not
            # watched, and only the guards that name kernels pay for watching.
            with self, _KernelWatch(self) if self.kernels else contextlib.nullcontext():
                return fn(*args, **kwargs)
        finally:
            if profile:
                sys.setprofile(previous)


#: The former private name, kept for code written against it.
_Guard = CallGuard


# --------------------------------------------------------------------------- helpers


def loss_names() -> list[str]:
    """Names of every loss the catalogue can check against."""
    _load_catalogue()
    return sorted(CATALOGUE)


def _load_catalogue() -> None:
    from . import cases  # noqa: F401  (registers every family's cases)


def _spec(name: str) -> LossSpec:
    _load_catalogue()
    if not isinstance(name, str):
        raise TypeError(f"name must be the name of a cvloss_ref loss (str), got {name!r}")
    if name not in CATALOGUE:
        close = difflib.get_close_matches(name, CATALOGUE, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"name must be a loss in the catalogue, got {name!r}{hint}")
    return CATALOGUE[name]


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


# Inputs may be collections of tensors (a list of feature maps, one per layer, or a
# mapping from layer names to them): the tensors inside are moved, copied and
# differentiated like positional tensors.


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``value`` with ``fn`` applied to every tensor, also inside lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if type(value) in (dict, OrderedDict):
        return type(value)((key, _map_tensors(item, fn)) for key, item in value.items())
    if type(value) in (list, tuple):
        return type(value)(_map_tensors(item, fn) for item in value)
    return value


def _tensor_items(value: Any, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """``(path, tensor)`` for every tensor in ``value``, in order (path ``""`` for a
    tensor itself, ``"[1]"`` or ``"['relu2']"`` inside a collection)."""
    if isinstance(value, torch.Tensor):
        return [(path, value)]
    if type(value) in (dict, OrderedDict):
        items = [(f"[{key!r}]", item) for key, item in value.items()]
    elif type(value) in (list, tuple):
        items = [(f"[{i}]", item) for i, item in enumerate(value)]
    else:
        return []
    return [found for key, item in items for found in _tensor_items(item, path + key)]


def _tensors(values: Sequence[Any]) -> list[torch.Tensor]:
    """Every tensor in ``values``, also inside collections."""
    return [tensor for value in values for _, tensor in _tensor_items(value)]


def _to(value: Any, device: torch.device | str) -> Any:
    return _map_tensors(value, lambda t: t.detach().to(device))


def _fresh(values: Sequence[Any], grad_inputs: Sequence[int]) -> list[Any]:
    """Independent copies; the differentiated inputs (every floating tensor in them)
    become leaves that require grad."""

    def clone(tensor: torch.Tensor, differentiated: bool) -> torch.Tensor:
        tensor = tensor.detach().clone()
        if differentiated and tensor.is_floating_point():
            tensor.requires_grad_(True)
        return tensor

    return [
        _map_tensors(value, lambda t, d=i in grad_inputs: clone(t, d))
        for i, value in enumerate(values)
    ]


def _grad_leaves(
    inputs: Sequence[Any], grad_inputs: Sequence[int]
) -> list[tuple[int, str, torch.Tensor]]:
    """``(input index, path, tensor)`` of every differentiated leaf, in a fixed order."""
    return [
        (i, path, tensor)
        for i in grad_inputs
        for path, tensor in _tensor_items(inputs[i])
        if tensor.requires_grad
    ]


def _describe(tensor: torch.Tensor) -> str:
    return f"shape {tuple(tensor.shape)}, dtype {str(tensor.dtype).replace('torch.', '')}"


def _describe_all(values: Sequence[Any]) -> str:
    return ", ".join(_describe(x) for x in _tensors(values))


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _values(tensor: torch.Tensor) -> str:
    flat = tensor.detach().reshape(-1).double().cpu()
    shown = ", ".join(_fmt(v) for v in flat[:_MAX_SHOWN].tolist())
    return shown + (", ..." if flat.numel() > _MAX_SHOWN else "")


def _mismatch(
    received: torch.Tensor,
    expected: torch.Tensor,
    rtol: float,
    atol: float,
    exact: torch.Tensor | None = None,
) -> torch.Tensor:
    """Elementwise: where ``received`` is not close to ``expected``.

    ``exact`` is the reference computed in float64 on the same inputs.  Where the
    reference's own float32 result is off from it (an ill-conditioned case, such
    as a mean of ±1e4 values that nearly cancel), a student may be off by as much:
    the tolerance grows by ten times the reference's own error there.
    """
    rec = received.detach().double().cpu()
    exp = expected.detach().double().cpu()
    ok = torch.isclose(rec, exp, rtol=rtol, atol=atol, equal_nan=True)
    if exact is not None:
        ex = exact.detach().double().cpu()
        slack = (exp - ex).abs().nan_to_num(nan=0.0, posinf=0.0)
        ok |= (rec - ex).abs() <= atol + rtol * ex.abs() + 10 * slack
    return ~ok


def _differences(mismatch: torch.Tensor, expected: torch.Tensor, received: torch.Tensor) -> str:
    """The first few positions where two same-shape tensors differ."""
    exp = expected.detach().double().cpu()
    rec = received.detach().double().cpu()
    if exp.dim() == 0:
        return f"    expected {_fmt(exp.item())}, received {_fmt(rec.item())}"
    bad = mismatch.nonzero().tolist()
    lines = []
    for index in bad[:_MAX_SHOWN]:
        where = tuple(index)
        lines.append(f"    at {where}: expected {_fmt(exp[where])}, received {_fmt(rec[where])}")
    lines.append(f"    ({len(bad)} of {exp.numel()} values differ)")
    return "\n".join(lines)


def _close(
    a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float, exact: torch.Tensor | None = None
) -> bool:
    if a.shape != b.shape:
        return False
    return not bool(_mismatch(a, b, rtol, atol, exact).any())


def _tolerance(dtype: torch.dtype) -> tuple[float, float]:
    tol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return tol["rtol"], tol["atol"]


def _grads(
    output: torch.Tensor, inputs: Sequence[Any], grad_inputs: Sequence[int], cotangent: torch.Tensor
) -> list[torch.Tensor | None]:
    """Gradients of ``<cotangent, output>`` w.r.t. the differentiated inputs, one per
    leaf of :func:`_grad_leaves` (every tensor of an input that is a collection).

    An input the output does not depend on gets an explicit zero gradient.
    """
    leaves = [tensor for _, _, tensor in _grad_leaves(inputs, grad_inputs)]
    if not leaves:
        return []
    grads = torch.autograd.grad(output, leaves, cotangent, allow_unused=True)
    return [torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads)]


def _short_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 300:
        first = first[:300] + "..."
    return f"{type(error).__name__}: {first}"


def _not_written(error: BaseException) -> bool:
    """Whether ``error`` says the function is a stub (``raise NotImplementedError()``),
    also when it comes from the grader's sandbox as text."""
    return isinstance(error, NotImplementedError) or str(error).startswith("NotImplementedError")


_NOT_WRITTEN = "  your function is not written yet: it raises NotImplementedError."


def _format_value(value: Any) -> str:
    """A keyword argument's value as a student would write it: ``0.1``, ``'sum'``, a
    short tensor's values, or a longer tensor's shape."""
    if isinstance(value, torch.Tensor):
        if value.numel() <= 6 and value.device.type != "meta":
            shown = ", ".join(_fmt(v) for v in value.detach().reshape(-1).double().cpu().tolist())
            return f"tensor([{shown}])" if value.dim() else f"tensor({shown})"
        return f"<tensor of shape {tuple(value.shape)}>"
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"<{type(value).__name__} of {len(value)} items>"
    return repr(value)


def _format_kwargs(kwargs: dict[str, Any]) -> str:
    """``label_smoothing=0.1, reduction='sum'``: names and values, in the given order."""
    return ", ".join(f"{key}={_format_value(value)}" for key, value in kwargs.items())


def _full_traceback_wanted() -> bool:
    """Whether the student asked IPython for full tracebacks (``%xmode Verbose``/``Plain``)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    mode = getattr(getattr(shell, "InteractiveTB", None), "mode", None)
    return shell is None or mode in ("Verbose", "Plain")


class LossMismatch(AssertionError):
    """What :func:`assert_loss_matches` and :func:`assert_outputs_match` raise.

    In Jupyter it shows only its message: the harness's own stack frames say nothing
    to a student.  IPython renders an exception through ``_render_traceback_`` when it
    has one; this one has it unless the student asks for the full traceback with
    ``%xmode Verbose`` (or ``%xmode Plain``), and then IPython's usual traceback shows.
    """

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        # A property that raises AttributeError makes hasattr() false, so IPython
        # falls back to its full traceback.
        if _full_traceback_wanted():
            raise AttributeError("_render_traceback_")
        return self._short_traceback

    def _short_traceback(self) -> list[str]:
        return [
            f"AssertionError: {self}",
            "(The checking code's own lines are hidden: run %xmode Verbose, then this cell "
            "again, for the full traceback.)",
        ]


# --------------------------------------------------------------------------- diagnosis


def _generic_value_hint(
    expected: torch.Tensor, received: torch.Tensor, unreduced: int | None, empty: bool
) -> str | None:
    exp = expected.detach().double().cpu()
    rec = received.detach().double().cpu()
    if empty and torch.isnan(rec).any() and not torch.isnan(exp).any():
        return MEAN_OVER_NOTHING
    if not torch.isfinite(rec).all() and torch.isfinite(exp).all():
        return (
            "your result is inf or NaN where the reference is finite: something overflows "
            "or takes log(0). Use the stable forms (log-sum-exp / log_softmax for softmax, "
            "softplus / logsigmoid for sigmoids, torch.where with a safe argument for 0·log 0)."
        )
    if exp.dim() == 0 and rec.dim() == 0 and torch.isfinite(exp) and exp.abs() > 1e-12:
        ratio = (rec / exp).item()
        if unreduced and unreduced > 1:
            if math.isclose(ratio, unreduced, rel_tol=1e-3):
                return (
                    f"your value is {unreduced} times the expected one: it looks like a sum "
                    "where a mean was asked for (reduction='mean' averages)."
                )
            if math.isclose(ratio, 1 / unreduced, rel_tol=1e-3):
                return (
                    f"your value is 1/{unreduced} of the expected one: it looks like a mean "
                    "where a sum was asked for (reduction='sum' adds)."
                )
        if math.isclose(ratio, -1.0, rel_tol=1e-4):
            return "your value has the wrong sign: check the minus sign of −log p."
    return None


#: The diagnosis of a mean over nothing (0/0), a convention where PyTorch differs.
MEAN_OVER_NOTHING = (
    "a mean over nothing is 0 here: with nothing to average (an empty batch, every target "
    "ignored), 'mean' divides a sum of 0 by a count of 0, and 0/0 is NaN. PyTorch returns "
    "NaN; this course returns 0 with a zero gradient, so that a batch with nothing to learn "
    "from leaves the model unchanged instead of filling it with NaN. Divide by "
    "torch.where(count > 0, count, 1) (the sum is 0 where the count is), or by max(n, 1) "
    "for a Python int n."
)


def _mean_over_nothing(
    fn: Callable,
    reference: Callable,
    inputs: Sequence[Any],
    kwargs: dict,
    received: torch.Tensor,
    expected: torch.Tensor,
    guard: CallGuard,
    rtol: float,
    atol: float,
) -> bool:
    """Whether the student's NaN is a 0/0 in the mean: their ``reduction="sum"`` is
    finite and right on the same inputs, while their ``"mean"`` is NaN where the
    reference's is finite (a finite sum divided by anything but 0 is finite)."""
    if kwargs.get("reduction", "mean") != "mean" or received.dim() != 0:
        return False
    if not (torch.isnan(received).all() and torch.isfinite(expected).all()):
        return False
    if "reduction" not in _parameters(reference):
        return False
    outputs = _both(fn, reference, inputs, {**kwargs, "reduction": "sum"}, guard)
    if outputs is None:
        return False
    expected_sum, received_sum = outputs
    return (
        isinstance(received_sum, torch.Tensor)
        and bool(torch.isfinite(received_sum).all())
        and _close(received_sum, expected_sum, rtol, atol)
    )


def _parameters(function: Callable) -> list[str]:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return []


def _both(
    fn: Callable, reference: Callable, inputs: Sequence[Any], kwargs: dict, guard: CallGuard
) -> tuple[Any, Any] | None:
    """The reference's and the student's outputs on fresh copies of ``inputs`` with
    ``kwargs`` (no gradients; what the guard records is forgotten: a diagnosis, not a
    check), or None when either raises."""
    try:
        with torch.no_grad():
            expected = reference(*_fresh(inputs, ()), **kwargs)
            received = guard.call(fn, *_fresh(inputs, ()), **kwargs)
    except Exception:
        return None
    finally:
        guard.hits.clear()
    return expected, received


def _ignored_argument(
    fn: Callable,
    reference: Callable,
    inputs: Sequence[Any],
    kwargs: dict,
    received: torch.Tensor,
    expected: torch.Tensor,
    guard: CallGuard,
    rtol: float,
    atol: float,
) -> str | None:
    """A hint when the student's output stays the same without a keyword argument that
    changes the reference's output: the argument is ignored."""
    for key, value in kwargs.items():
        without = {k: v for k, v in kwargs.items() if k != key}
        outputs = _both(fn, reference, inputs, without, guard)
        if outputs is None:
            continue
        reference_without, received_without = outputs
        if (
            isinstance(received_without, torch.Tensor)
            and _close(received_without, received, rtol, atol)
            and not _close(reference_without, expected, rtol, atol)
        ):
            return (
                f"your output is the same with {key}={_format_value(value)} as without it "
                f"(when {key} has its default value), while the expected output changes: "
                f"your function seems to ignore {key}."
            )
    return None


def _matching_mistakes(
    spec: LossSpec,
    inputs: Sequence[Any],
    kwargs: dict,
    received: torch.Tensor,
    expected: torch.Tensor,
    rtol: float,
    atol: float,
    exact: torch.Tensor | None,
) -> tuple[int, ...]:
    """The catalogued mistakes whose output equals the student's (and not the expected)."""
    found = []
    for index, mistake in enumerate(spec.mistakes):
        try:
            with torch.no_grad():
                wrong = mistake.fn(*[_to(x, received.device) for x in inputs], **kwargs)
        except Exception:
            continue
        if (
            isinstance(wrong, torch.Tensor)
            and _close(wrong, received, rtol, atol)
            and not _close(wrong, expected, rtol, atol, exact)
        ):
            found.append(index)
    return tuple(found)


def _detached_mistakes(
    spec: LossSpec,
    inputs: Sequence[Any],
    kwargs: dict,
    received: torch.Tensor,
    rtol: float,
    atol: float,
) -> tuple[int, ...]:
    """The catalogued mistakes whose output has the student's values and, like the
    student's, is not connected to the autograd graph."""
    found = []
    for index, mistake in enumerate(spec.mistakes):
        try:
            wrong = mistake.fn(*_fresh(inputs, spec.grad_inputs), **kwargs)
        except Exception:
            continue
        if (
            isinstance(wrong, torch.Tensor)
            and not wrong.requires_grad
            and _close(wrong, received, rtol, atol)
        ):
            found.append(index)
    return tuple(found)


def _choose_hints(result: CheckResult, spec: LossSpec, contradicts: Callable[[int], int]) -> None:
    """Give each failure its hint, once every case has run.

    A failure may match several catalogued mistakes (two mistakes can agree on one
    case).  The mistake that explains the student's function is the one that matches
    it on the most failed checks: a student who made mistake A matches A wherever A is
    wrong, and another mistake only where it happens to agree with A.  Where two
    candidates are equally supported, the one that is wrong on fewer of the checks the
    student passed wins (``contradicts``: A is right wherever the student is).  Each
    failure gets the hint of its best candidate; failures without one keep their
    fallback (a 0/0 in a mean, an ignored argument, a generic hint).
    """
    support: dict[int, int] = {}
    for failure in result.failures:
        for index in failure.candidates:
            support[index] = support.get(index, 0) + 1
    against: dict[int, int] = {}

    def evidence(index: int, candidates: tuple[int, ...]) -> tuple[int, int, int]:
        tied = [i for i in candidates if support[i] == max(support[c] for c in candidates)]
        if len(tied) > 1 and index in tied and index not in against:
            against[index] = contradicts(index)
        return support[index], -against.get(index, 0), -index

    for failure in result.failures:
        if failure.candidates:
            best = max(failure.candidates, key=lambda i: evidence(i, failure.candidates))
            failure.known_mistake = True
            failure.finish(spec.mistakes[best].hint)
        else:
            failure.finish(None)


def _matching_grad_mistakes(
    spec: LossSpec,
    inputs: Sequence[Any],
    kwargs: dict,
    cotangent: torch.Tensor,
    received_grads: Sequence[torch.Tensor],
    expected_grads: Sequence[torch.Tensor],
    exact_grads: Sequence[torch.Tensor | None],
    rtol: float,
    atol: float,
    nonfinite_only: bool = False,
) -> tuple[int, ...]:
    """The catalogued mistakes whose gradients equal the student's (not the expected).

    With ``nonfinite_only`` (a case where correct gradients may differ, so only their
    finiteness is checked), a mistake matches when its gradients are inf or NaN exactly
    where the student's are.
    """
    if nonfinite_only:
        received_bad = [~torch.isfinite(r) for r in received_grads]
    found = []
    for index, mistake in enumerate(spec.mistakes):
        try:
            fresh = _fresh(inputs, spec.grad_inputs)
            wrong = mistake.fn(*fresh, **kwargs)
            if not isinstance(wrong, torch.Tensor) or wrong.shape != cotangent.shape:
                continue
            grads = _grads(wrong, fresh, spec.grad_inputs, cotangent.to(wrong.dtype))
        except Exception:
            continue
        if nonfinite_only:
            if len(grads) == len(received_grads) and all(
                torch.equal(~torch.isfinite(g), bad) for g, bad in zip(grads, received_bad)
            ):
                found.append(index)
            continue
        if (
            len(grads) == len(received_grads)
            and all(_close(g, r, rtol, atol) for g, r in zip(grads, received_grads))
            and not all(
                _close(g, e, rtol, atol, x) for g, e, x in zip(grads, expected_grads, exact_grads)
            )
        ):
            found.append(index)
    return tuple(found)


def _diagnose_values(
    fn: Callable,
    reference: Callable,
    spec: LossSpec,
    inputs: Sequence[Any],
    kwargs: dict,
    received: torch.Tensor,
    expected: torch.Tensor,
    exact: torch.Tensor | None,
    guard: CallGuard,
    rtol: float,
    atol: float,
) -> dict[str, Any]:
    """Why the values differ: ``candidates`` (catalogued mistakes that give the
    student's output) and a ``fallback`` hint for when none does.

    A 0/0 in a mean is diagnosed first and alone: a mistake that divides the same way
    also gives NaN there, but its hint (about something else) would not explain it.
    """
    if _mean_over_nothing(fn, reference, inputs, kwargs, received, expected, guard, rtol, atol):
        return {"candidates": (), "fallback": MEAN_OVER_NOTHING}
    candidates = _matching_mistakes(spec, inputs, kwargs, received, expected, rtol, atol, exact)
    if candidates:
        return {"candidates": candidates, "fallback": None}
    fallback = _ignored_argument(
        fn, reference, inputs, kwargs, received, expected, guard, rtol, atol
    )
    if fallback is None:
        empty = any(x.numel() == 0 for x in _tensors(inputs))
        fallback = _generic_value_hint(
            expected, received, _unreduced_count(reference, inputs, kwargs), empty
        )
    return {"candidates": candidates, "fallback": fallback}


def _unreduced_count(reference: Callable, inputs: Sequence[Any], kwargs: dict) -> int | None:
    if kwargs.get("reduction", "mean") == "none":
        return None
    try:
        with torch.no_grad():
            full = reference(*inputs, **{**kwargs, "reduction": "none"})
        return int(full.numel())
    except Exception:
        return None


# --------------------------------------------------------------------------- one case


@dataclass
class _Outcome:
    """What one case found: ``status`` is "passed", "failed" or "skipped" (the
    reference rejects these parameters); ``hits`` lists forbidden calls; ``known``
    says the failure matched a catalogued mistake."""

    status: str
    message: str | None = None
    hits: list[str] = field(default_factory=list)
    known: bool = False
    candidates: tuple[int, ...] = ()  # catalogued mistakes that match (see Failure)
    fallback: str | None = None  # the hint when no catalogued mistake explains it
    note: str = ""  # the case's note, shown after the hint
    not_written: bool = False


def _check_output_form(expected: torch.Tensor, received: Any, reduction: str) -> str | None:
    if not isinstance(received, torch.Tensor):
        what = type(received).__name__
        hint = ""
        if isinstance(received, (int, float)):
            hint = (
                "\n  hint: return the tensor itself; .item(), float() or .tolist() turn it "
                "into a Python number, which has no gradient and forces a GPU sync."
            )
        return f"  your function returned a {what}, expected a torch.Tensor.{hint}"
    if received.shape != expected.shape:
        hint = ""
        if expected.dim() == 0:
            hint = (
                f"\n  hint: with reduction={reduction!r} the loss is a single number (shape "
                "()); apply the reduction to the per-element losses."
            )
        elif received.dim() == 0:
            hint = (
                "\n  hint: with reduction='none' return one value per element, without "
                "summing or averaging."
            )
        else:
            hint = "\n  hint: check which dimension you reduce over (the class dimension is 1)."
        return (
            f"  the output has the wrong shape.\n  expected: {_describe(expected)}\n"
            f"  received: {_describe(received)}{hint}"
        )
    if received.dtype != expected.dtype:
        return (
            f"  the output has the wrong dtype.\n  expected: {_describe(expected)}\n"
            f"  received: {_describe(received)}\n"
            "  hint: return the loss in the dtype of the inputs (compute in float32 for half "
            "precision, then cast back with .to(input.dtype)); avoid tensors created with a "
            "fixed dtype."
        )
    if received.device != expected.device:
        return (
            f"  the output is on {received.device}, expected {expected.device}.\n"
            "  hint: create new tensors with device=input.device (torch.zeros(..., "
            "device=x.device), torch.zeros_like(x))."
        )
    return None


def _exact(
    reference: Callable,
    inputs: Sequence[Any],
    kwargs: dict,
    grad_inputs: Sequence[int],
    cotangent: torch.Tensor,
    want_grad: bool,
) -> tuple[torch.Tensor | None, list[torch.Tensor | None]]:
    """The reference in float64 on the same inputs: the yardstick of rounding error.

    Returns ``(None, [None, ...])`` for float64 cases and where the reference
    cannot run in float64.
    """
    leaves = sum(
        1 for i in grad_inputs for _, t in _tensor_items(inputs[i]) if t.is_floating_point()
    )
    nothing: list[torch.Tensor | None] = [None] * leaves
    floating = [x for x in _tensors(inputs) if x.is_floating_point()]
    if not floating or all(x.dtype == torch.float64 for x in floating):
        return None, nothing

    def widen(value: Any) -> Any:
        return _map_tensors(value, lambda t: t.double() if t.is_floating_point() else t)

    wide_inputs = _fresh([widen(x) for x in inputs], grad_inputs)
    try:
        exact = reference(*wide_inputs, **{k: widen(v) for k, v in kwargs.items()})
        grads = _grads(exact, wide_inputs, grad_inputs, cotangent.double()) if want_grad else []
    except Exception:
        return None, nothing
    return exact.detach(), [g.detach() for g in grads] + nothing[len(grads) :]


def _check_case(
    fn: Callable,
    reference: Callable,
    spec: LossSpec,
    case: Case,
    dtype: torch.dtype,
    device: torch.device,
    params: dict,
    guard: CallGuard,
    seed: int,
) -> _Outcome:
    """Run one case in one dtype on one device."""
    generator = torch.Generator().manual_seed(_seed(spec.name, case.name, dtype, seed))
    raw_inputs, case_kwargs = case.make(generator, dtype)
    inputs = [_to(x, device) for x in raw_inputs]
    kwargs = {k: _to(v, device) for k, v in {**case_kwargs, **params}.items()}
    grad_inputs = spec.grad_inputs
    rtol, atol = _tolerance(dtype)

    ref_inputs = _fresh(inputs, grad_inputs)
    try:
        expected = reference(*ref_inputs, **kwargs)
    except (ValueError, TypeError):
        return _Outcome("skipped")
    want_grad = case.grad != "none" and expected.requires_grad
    cotangent = torch.randn(expected.shape, generator=generator, dtype=torch.float64)
    cotangent = cotangent.to(device=device, dtype=expected.dtype)
    expected_grads = _grads(expected, ref_inputs, grad_inputs, cotangent) if want_grad else []
    exact, exact_grads = _exact(reference, inputs, kwargs, grad_inputs, cotangent, want_grad)

    stu_inputs = _fresh(inputs, grad_inputs)
    guard.hits.clear()
    try:
        received = guard.call(fn, *stu_inputs, **kwargs)
    except Exception as error:  # a student's bug must not stop the check
        if guard.hits:
            return _Outcome("failed", hits=list(guard.hits))
        if _not_written(error):
            return _Outcome("failed", _NOT_WRITTEN, not_written=True)
        given = _format_kwargs(kwargs) or "none"
        return _Outcome(
            "failed",
            (
                f"  your function raised {_short_error(error)}\n"
                f"  (inputs: {_describe_all(inputs)}; keyword arguments: {given})"
            ),
        )
    if guard.hits:
        return _Outcome("failed", hits=list(guard.hits))

    for original, given in zip(_tensors(inputs), _tensors(stu_inputs)):
        if not torch.equal(original.cpu(), given.detach().cpu()):
            return _Outcome(
                "failed",
                (
                    "  your function changed one of its inputs in place.\n"
                    "  hint: a loss must not modify its arguments: avoid in-place operations "
                    "such as x.clamp_(), x[...] = ..., x += ... on the inputs (work on a copy)."
                ),
            )

    reduction = kwargs.get("reduction", "mean")
    form = _check_output_form(expected, received, reduction)
    if form is not None:
        # A catalogued mistake may give the same wrong shape (or dtype): its hint is
        # more precise than the general one.
        body, _, general = form.partition("\n  hint: ")
        candidates = ()
        if isinstance(received, torch.Tensor):
            candidates = _matching_mistakes(
                spec, inputs, kwargs, received, expected, rtol, atol, exact
            )
        return _Outcome("failed", body, candidates=candidates, fallback=general or None)

    mismatch = _mismatch(received, expected, rtol, atol, exact)
    if mismatch.any():
        lines = [
            "  the values differ.",
            f"  expected: {_describe(expected)}: {_values(expected)}",
            f"  received: {_describe(received)}: {_values(received)}",
            _differences(mismatch, expected, received),
        ]
        if kwargs:
            lines.append(f"  keyword arguments: {_format_kwargs(kwargs)}")
        return _Outcome(
            "failed",
            "\n".join(lines),
            note=case.note,
            **_diagnose_values(
                fn, reference, spec, inputs, kwargs, received, expected, exact, guard, rtol, atol
            ),
        )

    if want_grad:
        if not received.requires_grad:
            return _Outcome(
                "failed",
                "  the values match, but your output is not connected to the autograd graph: "
                "no gradient can flow back to the inputs.",
                candidates=_detached_mistakes(spec, inputs, kwargs, received, rtol, atol),
                fallback="do not use .detach(), .item(), .numpy(), torch.tensor(...) of "
                "computed values or torch.no_grad() in the loss.",
            )
        try:
            received_grads = _grads(received, stu_inputs, grad_inputs, cotangent)
        except Exception as error:
            return _Outcome(
                "failed",
                f"  back-propagating through your output raised {_short_error(error)}",
            )
        leaves = _grad_leaves(ref_inputs, grad_inputs)
        for (index, path, _), exp_g, rec_g, exact_g in zip(
            leaves, expected_grads, received_grads, exact_grads
        ):
            name = _input_name(reference, index) + path
            finite_ref = torch.isfinite(exp_g)
            if case.grad == "finite":
                bad = ~torch.isfinite(rec_g) & finite_ref
                if bool(bad.any()):
                    return _Outcome(
                        "failed",
                        f"  the values match, but the gradient with respect to {name} is "
                        "inf or NaN where it must be finite.",
                        candidates=_matching_grad_mistakes(
                            spec,
                            inputs,
                            kwargs,
                            cotangent,
                            received_grads,
                            expected_grads,
                            exact_grads,
                            rtol,
                            atol,
                            nonfinite_only=True,
                        ),
                        fallback="a branch that torch.where discards still back-propagates: "
                        "put a safe value inside the log/sqrt/division of that branch (the "
                        "'double where' trick).",
                        note=case.note,
                    )
                continue
            grad_mismatch = _mismatch(rec_g, exp_g, rtol, atol, exact_g)
            if grad_mismatch.any():
                lines = [
                    f"  the values match, but the gradients with respect to {name} differ.",
                    _differences(grad_mismatch, exp_g, rec_g),
                ]
                if kwargs:
                    lines.append(f"  keyword arguments: {_format_kwargs(kwargs)}")
                candidates = _matching_grad_mistakes(
                    spec,
                    inputs,
                    kwargs,
                    cotangent,
                    received_grads,
                    expected_grads,
                    exact_grads,
                    rtol,
                    atol,
                )
                if bool((~torch.isfinite(rec_g) & finite_ref).any()):
                    fallback = (
                        "your gradient is inf or NaN where the reference's is finite: "
                        "a log, sqrt or division of 0 in a branch that torch.where discards "
                        "still poisons the gradient; use a safe argument inside it."
                    )
                else:
                    fallback = (
                        "when values agree but gradients do not, something is detached "
                        "that should not be (.detach(), .data, torch.no_grad(), .item()), or "
                        "not detached that should be (a weight the method treats as a "
                        "constant); a clamp or abs at a kink also changes the gradient."
                    )
                return _Outcome(
                    "failed",
                    "\n".join(lines),
                    candidates=candidates,
                    fallback=fallback,
                    note=case.note,
                )
    return _Outcome("passed")


def _input_name(reference: Callable, index: int) -> str:
    try:
        params = list(inspect.signature(reference).parameters)
        return params[index]
    except (TypeError, ValueError, IndexError):
        return f"input {index}"


def _check_meta(
    fn: Callable,
    reference: Callable,
    spec: LossSpec,
    case: Case,
    params: dict,
    guard: CallGuard,
    seed: int,
) -> tuple[str | None, list[str]]:
    """Run ``fn`` on meta tensors; a message when it fails where the reference works."""
    generator = torch.Generator().manual_seed(_seed(spec.name, case.name, "meta", seed))
    raw_inputs, case_kwargs = case.make(generator, torch.float32)
    inputs = [_to(x, "meta") for x in raw_inputs]
    kwargs = {k: _to(v, "meta") for k, v in {**case_kwargs, **params}.items()}
    expected_shape = _reference_on_meta(reference, inputs, kwargs)
    if expected_shape is None:
        return None, []  # the reference needs values here: nothing to compare
    guard.hits.clear()
    try:
        received = guard.call(fn, *inputs, **kwargs)
    except Exception as error:
        if guard.hits:
            return None, list(guard.hits)
        if _not_written(error):
            return _NOT_WRITTEN, []
        return (
            "  your function does not run on tensors of another device "
            "(it was given 'meta' tensors, which hold no data, and raised "
            f"{_short_error(error)}).\n"
            "  hint: create new tensors on the inputs' device (torch.zeros(..., device=x.device) "
            "or torch.zeros_like(x)) and keep values on it: .item(), .tolist(), .numpy(), "
            "float(tensor) and `if tensor:` read data back to Python, which fails here and "
            "forces a slow GPU synchronisation in training."
        ), []
    if guard.hits:
        return None, list(guard.hits)
    if not isinstance(received, torch.Tensor) or received.device.type != "meta":
        where = received.device if isinstance(received, torch.Tensor) else type(received).__name__
        return (
            f"  given 'meta' tensors, your function returned a result on {where}.\n"
            "  hint: build the result from the inputs, creating any new tensor with "
            "device=input.device."
        ), []
    if received.shape != expected_shape:
        return None, []  # the value check reports shapes more clearly
    return None, []


#: The shapes of the reference's outputs on meta inputs, by reference and inputs' shapes,
#: dtypes and arguments (None: the reference needs values); at most META_MEMO_SIZE.
_META_SHAPES: OrderedDict[tuple, torch.Size | None] = OrderedDict()
META_MEMO_SIZE = 4096
_META_LOCK = threading.Lock()


def _meta_signature(value: Any) -> Any:
    """What a meta computation can depend on in ``value``: a tensor's shape, dtype and
    whether it requires grad, a plain value itself; raises TypeError on anything else (a
    callable, a module), which is not memoised."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.requires_grad)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_meta_signature(v) for v in value))
    if value is None or isinstance(value, (bool, int, str)):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", repr(value))  # -0.0 and nan kept apart and equal to themselves
    raise TypeError(type(value).__name__)


def _reference_on_meta(reference: Callable, inputs: list, kwargs: dict) -> torch.Size | None:
    """The shape of ``reference(*inputs, **kwargs)`` on meta tensors, or None where it
    raises (it needs values).  A reference's output shape is a function of what
    :func:`_meta_signature` keeps, and meta tensors run through PyTorch's Python
    reference implementations (milliseconds per call), so the shape is memoised: a
    grader checks the same cases for every submission (0.6 s of its CPU per a02
    notebook)."""
    try:
        key = (reference, _meta_signature(inputs), _meta_signature(sorted(kwargs.items())))
    except TypeError:
        key = None
    if key is not None:
        with _META_LOCK:  # a Dask worker grades in several threads
            if key in _META_SHAPES:
                _META_SHAPES.move_to_end(key)
                return _META_SHAPES[key]
    try:
        shape = reference(*inputs, **kwargs).shape
    except Exception:
        shape = None
    if key is not None:
        with _META_LOCK:
            _META_SHAPES[key] = shape
            while len(_META_SHAPES) > META_MEMO_SIZE:
                _META_SHAPES.popitem(last=False)
    return shape


# --------------------------------------------------------------------------- public API


def _devices(devices: Iterable[str | torch.device] | None) -> list[torch.device]:
    if devices is None:
        found = [torch.device("cpu")]
        if torch.cuda.is_available():
            found.append(torch.device("cuda"))
        return found
    return [torch.device(d) for d in devices]


def check_loss(
    fn: Callable,
    name: str,
    *,
    forbid: Iterable[Any] = (),
    devices: Iterable[str | torch.device] | None = None,
    dtypes: Iterable[torch.dtype] | None = None,
    cases: Iterable[str] | None = None,
    check_meta: bool = True,
    seed: int = 0,
    **params: Any,
) -> CheckResult:
    """Run every check of :func:`assert_loss_matches` and return what was found.

    Never raises because of ``fn``: an exception inside it is a failed check.
    Raises ``ValueError``/``TypeError`` for a wrong ``name``, ``cases`` or
    parameters that the reference rejects on every case.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable (your loss function), got {type(fn).__name__}")
    import cvloss_ref

    spec = _spec(name)
    reference = getattr(cvloss_ref, name)
    selected = list(spec.cases)
    if cases is not None:
        wanted = list(cases)
        unknown = [c for c in wanted if c not in {case.name for case in spec.cases}]
        if unknown:
            raise ValueError(
                f"cases must name cases of {name!r} "
                f"({', '.join(repr(c.name) for c in spec.cases)}), got {unknown}"
            )
        selected = [case for case in spec.cases if case.name in wanted]
    dtype_filter = set(dtypes) if dtypes is not None else None
    guard = CallGuard(reference, forbid)
    result = CheckResult(name=name, params=dict(params))
    passed_runs: list[tuple[Case, torch.dtype, torch.device]] = []

    def contradicts(index: int) -> int:
        """How many checks the student passed on which mistake ``index`` is wrong."""
        return _contradictions(spec.mistakes[index].fn, reference, spec, passed_runs, params, seed)

    def delegation(hits: list[str], case: Case, dtype: torch.dtype | None, device: str) -> None:
        result.failures.insert(
            0,
            Failure(
                case.name,
                dtype,
                device,
                "  your function calls "
                + " and ".join(hits)
                + ", which this exercise does not allow.\n"
                "  hint: implement the formula with elementary tensor operations.",
            ),
        )

    for case in selected:
        for dtype in case.dtypes:
            if dtype_filter is not None and dtype not in dtype_filter:
                continue
            for device in _devices(devices):
                outcome = _check_case(fn, reference, spec, case, dtype, device, params, guard, seed)
                label = f"{case.name} ({str(dtype).replace('torch.', '')}, {device})"
                if outcome.hits:
                    delegation(outcome.hits, case, dtype, str(device))
                    return _finished(
                        result, spec, contradicts
                    )  # nothing else matters once it delegates
                if outcome.status == "skipped":
                    result.skipped.append(label)
                elif outcome.status == "passed":
                    result.passed.append(label)
                    passed_runs.append((case, dtype, device))
                else:
                    result.failures.append(
                        Failure(
                            case.name,
                            dtype,
                            str(device),
                            outcome.message or "",
                            outcome.known,
                            candidates=outcome.candidates,
                            fallback_hint=outcome.fallback,
                            note=outcome.note,
                            not_written=outcome.not_written,
                        )
                    )
        if check_meta:
            message, hits = _check_meta(fn, reference, spec, case, params, guard, seed)
            if hits:
                delegation(hits, case, torch.float32, "meta")
                return _finished(result, spec, contradicts)
            if message:
                result.failures.append(
                    Failure(
                        case.name,
                        torch.float32,
                        "meta",
                        message,
                        not_written=message == _NOT_WRITTEN,
                    )
                )
            else:
                result.passed.append(f"{case.name} (meta)")
    if not result.passed and not result.failures:
        raise ValueError(
            f"the reference {name!r} rejects the parameters {params} on every case: "
            "check their names and values"
        )
    return _finished(result, spec, contradicts)


def _finished(
    result: CheckResult, spec: LossSpec, contradicts: Callable[[int], int]
) -> CheckResult:
    """``result`` with every failure's hint chosen (see :func:`_choose_hints`)."""
    _choose_hints(result, spec, contradicts)
    return result


def _contradictions(
    mistake: Callable,
    reference: Callable,
    spec: LossSpec,
    runs: Sequence[tuple[Case, torch.dtype, torch.device]],
    params: dict,
    seed: int,
) -> int:
    """On how many of ``runs`` (checks the student passed) ``mistake``'s value differs
    from the reference's, on the same inputs as the check drew."""
    count = 0
    for case, dtype, device in runs:
        generator = torch.Generator().manual_seed(_seed(spec.name, case.name, dtype, seed))
        raw_inputs, case_kwargs = case.make(generator, dtype)
        inputs = [_to(x, device) for x in raw_inputs]
        kwargs = {k: _to(v, device) for k, v in {**case_kwargs, **params}.items()}
        rtol, atol = _tolerance(dtype)
        try:
            with torch.no_grad():
                expected = reference(*inputs, **kwargs)
                wrong = mistake(*inputs, **kwargs)
        except Exception:
            count += 1  # the mistake fails where the student did not
            continue
        if not isinstance(wrong, torch.Tensor) or not _close(wrong, expected, rtol, atol):
            count += 1
    return count


def assert_loss_matches(
    fn: Callable,
    name: str,
    *,
    forbid: Iterable[Any] = (),
    devices: Iterable[str | torch.device] | None = None,
    dtypes: Iterable[torch.dtype] | None = None,
    cases: Iterable[str] | None = None,
    check_meta: bool = True,
    seed: int = 0,
    **params: Any,
) -> None:
    """Assert that ``fn`` computes the loss ``cvloss_ref.<name>``, values and gradients.

    Args:
        fn: the implementation to check, with the reference's signature.
        name: the public name of the reference in :mod:`cvloss_ref`
            (``"cross_entropy"``, ``"giou_loss"``, ...).
        forbid: functions ``fn`` may not call: torch functions
            (``torch.nn.functional.cross_entropy``, ``torch.logsumexp``),
            ``nn.Module`` classes, any Python function, or names as strings;
            the table of ``cvloss_ref._forbidden`` adds each one's kernels and
            helpers (see :class:`CallGuard`).  Calling the reference
            ``cvloss_ref.<name>`` is always forbidden.
        devices: where to run (default: CPU, and CUDA when available).
        dtypes: restrict the floating dtypes (default: each case's, float32
            and float64).
        cases: restrict to these case names of the catalogue.
        check_meta: also run ``fn`` on ``meta`` tensors, which catches tensors
            created on the wrong device and values read back to Python.
        seed: varies the random inputs (hidden tests draw fresh ones); the
            same seed always gives the same inputs.
        **params: keyword arguments passed to both ``fn`` and the reference on
            every case (``label_smoothing=0.1``, ``reduction="sum"``, ...).

    Raises:
        LossMismatch: an AssertionError with a message for the student when a check fails.

    Example:
        >>> import torch
        >>> from cvloss_ref.testing import assert_loss_matches
        >>> def mse(input, target, reduction="mean"):
        ...     squared = (input - target) ** 2
        ...     if reduction == "none":
        ...         return squared
        ...     if reduction == "sum" or squared.numel() == 0:  # an empty mean is 0
        ...         return squared.sum()
        ...     return squared.mean()
        >>> assert_loss_matches(mse, "mse_loss")
    """
    result = check_loss(
        fn,
        name,
        forbid=forbid,
        devices=devices,
        dtypes=dtypes,
        cases=cases,
        check_meta=check_meta,
        seed=seed,
        **params,
    )
    if not result.ok:
        raise LossMismatch(result.message())


# --------------------------------------------------------------------------- outputs

#: One case of :func:`assert_outputs_match`: a description the student reads, the
#: positional arguments and the keyword arguments.
OutputCase = tuple[str, Sequence[Any], dict[str, Any]]


class _LargestTensor(TorchFunctionMode):
    """Records the largest tensor (bytes of storage) that any torch call returns."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor) and value.device.type != "meta":
                self.nbytes = max(self.nbytes, value.untyped_storage().nbytes())
        return out


def _shown(tensor: torch.Tensor, limit: int = 8) -> str:
    values = tensor.detach().flatten()[:limit].cpu().tolist()
    values = [round(v, 6) if isinstance(v, float) else v for v in values]
    more = ", ..." if tensor.numel() > limit else ""
    return f"{values}{more} (shape {tuple(tensor.shape)}, {str(tensor.dtype)[6:]})"


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.0f} KiB"


def _compare_output(
    where: str,
    label: str,
    expected: torch.Tensor,
    received: Any,
    rtol: float,
    atol: float,
    check_dtype: bool,
) -> None:
    """Raise AssertionError (for a student) unless ``received`` matches ``expected``."""
    if not isinstance(received, torch.Tensor):
        raise LossMismatch(f"{where}: expected {label}a tensor, got {type(received).__name__}")
    if received.shape != expected.shape:
        raise LossMismatch(
            f"{where}:\n  expected {label}{_shown(expected)}\n  received {label}"
            f"{_shown(received)}\n  (expected shape {tuple(expected.shape)}, "
            f"got {tuple(received.shape)})"
        )
    if check_dtype and received.dtype != expected.dtype:
        raise LossMismatch(f"{where}: expected {label}dtype {expected.dtype}, got {received.dtype}")
    converted = received.detach().to(device=expected.device, dtype=expected.dtype)
    if expected.is_floating_point() or expected.is_complex():
        close = torch.isclose(converted, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = converted == expected
    if not bool(close.all()):
        raise LossMismatch(
            f"{where}:\n  expected {label}{_shown(expected)}\n  received {label}{_shown(received)}"
        )


def assert_outputs_match(
    fn: Callable,
    name: str,
    cases: Iterable[OutputCase],
    *,
    forbid: Iterable[Any] = (),
    reference: Callable | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_dtype: bool = True,
    max_bytes: int | None = None,
) -> None:
    """Assert that ``fn`` returns what the reference returns on every case given.

    For functions that are not losses of the catalogue (an NMS, a weight map, an
    experiment, a miner): nothing is differentiated and the cases come from the
    caller, e.g. from :mod:`cvloss_ref.exercises`.  For each case, ``fn`` and the
    reference are called on deep copies of the arguments, and

    * ``fn`` must not raise, nor call the reference or anything in ``forbid``
      (see :class:`CallGuard`), nor change its tensor arguments in place;
    * its output must have the reference's form: a tensor, or a tuple or list of
      as many tensors as the reference returns;
    * each tensor must have the expected shape and (with ``check_dtype``) dtype,
      and values equal to the expected ones: within ``rtol``/``atol`` (NaN equal
      to NaN) for floating tensors, exactly for integer and boolean ones;
    * with ``max_bytes``, no tensor that a torch call inside ``fn`` returns may
      have a larger storage (a memory bound, e.g. no ``(B, B, B)`` tensor).

    Args:
        fn: the implementation to check.
        name: the name shown in messages; also the reference ``cvloss_ref.<name>``
            when ``reference`` is not given.
        cases: :data:`OutputCase` triples ``(description, args, kwargs)``.
        forbid: functions ``fn`` may not call, as for :func:`assert_loss_matches`.
        reference: the function whose outputs are expected (default
            ``cvloss_ref.<name>``); ``fn`` may not call it either.
        rtol, atol: tolerances for floating outputs.
        check_dtype: also require the reference's dtype.
        max_bytes: the largest tensor ``fn`` may create, in bytes.

    Raises:
        LossMismatch: an AssertionError with a message for the student, at the first case that
            differs.

    Example:
        >>> import torch
        >>> from cvloss_ref.testing import assert_outputs_match
        >>> def double(x):
        ...     return 2 * x
        >>> cases = [("integers", (torch.tensor([1, 2, 3]),), {})]
        >>> assert_outputs_match(double, "double", cases, reference=lambda x: x + x)
        >>> assert_outputs_match(lambda x: x + 1, "double", cases, reference=double)
        Traceback (most recent call last):
        ...
        cvloss_ref.testing.LossMismatch: double does not match the reference on case "integers":
          expected [2, 4, 6] (shape (3,), int64)
          received [2, 3, 4] (shape (3,), int64)
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable (your function), got {type(fn).__name__}")
    if reference is None:
        import cvloss_ref

        reference = getattr(cvloss_ref, name)
    forbid = list(forbid)
    for description, args, kwargs in cases:
        where = f'{name} does not match the reference on case "{description}"'
        expected = reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        given = copy.deepcopy(args)
        guard, largest = CallGuard(reference, forbid), _LargestTensor()
        try:
            with largest:
                received = guard.call(fn, *given, **copy.deepcopy(kwargs))
        except Exception as error:
            written = ": your function is not written yet" if _not_written(error) else ""
            raise LossMismatch(
                f'{name} raised {type(error).__name__} on case "{description}"'
                + (written or f": {error}")
            ) from None
        if guard.hits:
            raise LossMismatch(
                f"{name} calls {' and '.join(guard.hits)}, which this exercise does not allow"
            )
        for before, after in zip(args, given):
            if isinstance(before, torch.Tensor) and not torch.equal(before, after):
                raise LossMismatch(f"{where}: your function changed one of its inputs")
        if isinstance(expected, (tuple, list)):
            if not isinstance(received, (tuple, list)) or len(received) != len(expected):
                size = f" of {len(received)}" if isinstance(received, (tuple, list)) else ""
                raise LossMismatch(
                    f"{where}: expected a tuple of {len(expected)} tensors, "
                    f"got {type(received).__name__}{size}"
                )
            for index, (exp, rec) in enumerate(zip(expected, received)):
                label = f"output {index} = "
                _compare_output(where, label, exp, rec, rtol, atol, check_dtype)
        else:
            _compare_output(where, "", expected, received, rtol, atol, check_dtype)
        if max_bytes is not None and largest.nbytes > max_bytes:
            raise LossMismatch(
                f"{name} created a tensor of {_size(largest.nbytes)} on case "
                f'"{description}" (at most {_size(max_bytes)} allowed)'
            )
