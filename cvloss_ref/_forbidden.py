"""What it means to use a forbidden built-in: the one table of the course.

An exercise forbids a built-in by naming it (``forbid=[F.cross_entropy]``), but the same
loss is reachable by other names: the ``nn.Module`` (``nn.CrossEntropyLoss``), the ATen
op (``torch.ops.aten.cross_entropy_loss``), the C binding
(``torch._C._nn.nll_loss_nd``), a private helper of the library that computes it
(``torchvision.ops.diou_loss._diou_iou_loss``), each of them through ``getattr``,
``importlib``, ``functools.partial`` or a function built with ``exec``.  Every route ends
in the same place, which is what a guard watches:

* a **kernel**: the ATen (or torchvision) operator that computes the loss, seen by a
  ``TorchDispatchMode`` after composite ops have decomposed (``F.cross_entropy`` with
  class indices ends in ``aten::nll_loss_forward``, whatever name started it);
* a **torch name**: the op's name as a ``TorchFunctionMode`` sees it before decomposition
  (``cross_entropy_loss``, ``nll_loss_nd``), for the losses that decompose into
  elementary ops (``F.kl_div``, ``F.l1_loss``) and leave no kernel of their own;
* a **Python function**: the code of a pure-Python built-in (``torchvision.ops.box_iou``,
  built from elementary ops) and of the private helpers that compute the same thing,
  recognised by their code object (in the notebook) or their module and qualified name
  (in the grader's sandbox, which cannot import this package).

:data:`TABLE` maps each public name an exercise may forbid to its :class:`Forbidden`
entry (the kernels and helpers of its loss); :func:`rule_for` turns what a notebook
lists (a function, a class, a string) into a :class:`Rule` that
:class:`cvloss_ref.testing.CallGuard` watches, and whose :meth:`Rule.message` the
grader sends to its sandboxed verifier (``grading/_verifier.py``).  Elementary
operations (``log_softmax``, ``logsumexp``, ``softplus``, ``gather``, ``norm``, ...)
appear in no entry and stay allowed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TABLE", "Forbidden", "Rule", "canonical", "rule_for"]


@dataclass(frozen=True)
class Forbidden:
    """What a forbidden built-in's loss is made of, besides the built-in itself.

    Attributes:
        ops: qualified operator names (``"aten::nll_loss_forward"``) whose use means the
            loss was used, however it was reached.
        python: dotted names of private Python helpers that compute the same thing
            (``"torchvision.ops.diou_loss._diou_iou_loss"``).
    """

    ops: tuple[str, ...] = ()
    python: tuple[str, ...] = ()


_CROSS_ENTROPY = Forbidden(
    ops=(
        "aten::cross_entropy_loss",
        "aten::nll_loss",
        "aten::nll_loss_nd",
        "aten::nll_loss2d",
        "aten::nll_loss_forward",
        "aten::nll_loss2d_forward",
    )
)
_BCE = Forbidden(ops=("aten::binary_cross_entropy", "aten::binary_cross_entropy_with_logits"))
# smooth_l1(x, beta) * beta == huber(x, delta=beta): either gives the other.
_SMOOTH_L1 = Forbidden(ops=("aten::smooth_l1_loss", "aten::huber_loss"))
_CDIST = Forbidden(ops=("aten::cdist", "aten::_cdist_forward", "aten::_euclidean_dist"))
_NMS = Forbidden(
    ops=("torchvision::nms",),
    python=(
        "torchvision.ops.boxes._batched_nms_coordinate_trick",
        "torchvision.ops.boxes._batched_nms_vanilla",
    ),
)

#: Each public name an exercise may forbid (a function or its ``nn.Module``), with its
#: loss's kernels and helpers.  A name missing here is still refused by its own code and
#: name; an entry adds the other routes to the same loss.
TABLE: dict[str, Forbidden] = {
    "torch.nn.functional.cross_entropy": _CROSS_ENTROPY,
    "torch.nn.functional.nll_loss": _CROSS_ENTROPY,
    "torch.nn.CrossEntropyLoss": _CROSS_ENTROPY,
    "torch.nn.NLLLoss": _CROSS_ENTROPY,
    "torch.nn.functional.binary_cross_entropy": _BCE,
    "torch.nn.functional.binary_cross_entropy_with_logits": _BCE,
    "torch.nn.BCELoss": _BCE,
    "torch.nn.BCEWithLogitsLoss": _BCE,
    "torch.nn.functional.mse_loss": Forbidden(ops=("aten::mse_loss",)),
    "torch.nn.MSELoss": Forbidden(ops=("aten::mse_loss",)),
    "torch.nn.functional.l1_loss": Forbidden(ops=("aten::l1_loss",)),
    "torch.nn.L1Loss": Forbidden(ops=("aten::l1_loss",)),
    "torch.nn.functional.smooth_l1_loss": _SMOOTH_L1,
    "torch.nn.functional.huber_loss": _SMOOTH_L1,
    "torch.nn.SmoothL1Loss": _SMOOTH_L1,
    "torch.nn.HuberLoss": _SMOOTH_L1,
    "torch.nn.functional.kl_div": Forbidden(ops=("aten::kl_div",)),
    "torch.nn.KLDivLoss": Forbidden(ops=("aten::kl_div",)),
    "torch.nn.functional.hinge_embedding_loss": Forbidden(ops=("aten::hinge_embedding_loss",)),
    "torch.nn.HingeEmbeddingLoss": Forbidden(ops=("aten::hinge_embedding_loss",)),
    "torch.nn.functional.multi_margin_loss": Forbidden(ops=("aten::multi_margin_loss",)),
    "torch.nn.MultiMarginLoss": Forbidden(ops=("aten::multi_margin_loss",)),
    "torch.nn.functional.triplet_margin_loss": Forbidden(ops=("aten::triplet_margin_loss",)),
    "torch.nn.TripletMarginLoss": Forbidden(ops=("aten::triplet_margin_loss",)),
    "torch.nn.functional.pairwise_distance": Forbidden(ops=("aten::pairwise_distance",)),
    "torch.nn.PairwiseDistance": Forbidden(ops=("aten::pairwise_distance",)),
    "torch.special.entr": Forbidden(ops=("aten::special_entr",)),
    "torch.einsum": Forbidden(ops=("aten::einsum",)),
    "torch.cdist": _CDIST,
    "torch.pdist": Forbidden(ops=("aten::pdist", "aten::_pdist_forward")),
    "torchvision.ops.box_iou": Forbidden(
        ops=("torchvision::box_iou_rotated",),
        python=(
            "torchvision.ops.boxes._box_inter_union",
            "torchvision.ops._utils._loss_inter_union",
        ),
    ),
    # Pure Python, built from elementary ops: refused by their own code.
    "torchvision.ops.generalized_box_iou": Forbidden(),
    "torchvision.ops.generalized_box_iou_loss": Forbidden(),
    "torchvision.ops.complete_box_iou": Forbidden(),
    "torchvision.ops.complete_box_iou_loss": Forbidden(),
    "torchvision.ops.distance_box_iou": Forbidden(python=("torchvision.ops.boxes._box_diou_iou",)),
    "torchvision.ops.distance_box_iou_loss": Forbidden(
        python=("torchvision.ops.diou_loss._diou_iou_loss",)
    ),
    "torchvision.ops.nms": _NMS,
    "torchvision.ops.batched_nms": _NMS,
}


def canonical(name: str) -> str:
    """A torch name as a guard compares it: no overload, namespace, underscores or
    ``special_`` prefix (``aten::_cdist_forward.default`` -> ``cdist_forward``,
    ``special_entr`` -> ``entr``, ``__add__`` -> ``add``)."""
    name = name.rsplit("::", 1)[-1].split(".", 1)[0].strip("_")
    return name[len("special_") :] if name.startswith("special_") else name


def _resolve(dotted: str) -> Any:
    """The object a dotted name names (``torchvision.ops.box_iou``), or ``None`` when its
    package is not installed or has no such attribute."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


@functools.cache
def _resolved(dotted: str) -> Any:
    return _resolve(dotted)


def _entries() -> tuple[tuple[Any, str, Forbidden], ...]:
    """The table's entries whose package is imported: (object, public name, entry).

    An object given to :func:`_entry` belongs to a package that is imported already, so
    the names of the others cannot be it; not importing them (``torchvision`` imports
    Dynamo: about 2 s) keeps a guard cheap to build in a fresh process."""
    found = []
    for name, entry in TABLE.items():
        if name.split(".", 1)[0] not in sys.modules:
            continue
        obj = _resolved(name)
        if obj is not None:
            found.append((obj, name, entry))
    return tuple(found)


def _entry(item: Any) -> Forbidden:
    """The table's entry for ``item`` (an object or a dotted name), or an empty one."""
    if isinstance(item, str):
        return TABLE.get(item, Forbidden())
    for obj, _, entry in _entries():
        if obj is item:
            return entry
    return Forbidden()


def _python_function(item: Any) -> Callable | None:
    """The Python function whose running means ``item`` is used: the function itself
    (unwrapped), a class's ``forward``; ``None`` for a C function."""
    if inspect.isclass(item):
        item = getattr(item, "forward", None)
    if item is None:
        return None
    func = inspect.unwrap(item)
    return func if hasattr(func, "__code__") else None


def label_of(obj: Any) -> str:
    """``module.qualname`` of a function or class (``torch.nn.functional.mse_loss``)."""
    module = getattr(obj, "__module__", None) or ""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    return f"{module}.{qualname}" if module else str(qualname)


@dataclass(frozen=True)
class Rule:
    """One forbidden built-in, as a guard watches it.

    Attributes:
        label: what a student is told they used (``torch.nn.functional.cross_entropy``).
        names: canonical torch names (:func:`canonical`) a ``TorchFunctionMode`` refuses.
        ops: qualified operator names a ``TorchDispatchMode`` refuses.
        functions: Python functions whose code is refused when it runs (the built-in's
            own: the function, a class's ``forward``).
        helpers: private Python functions that compute the same thing, refused too.
    """

    label: str
    names: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    functions: tuple[Callable, ...] = ()
    helpers: tuple[Callable, ...] = ()

    def message(self) -> dict:
        """The rule as plain data for the sandboxed verifier, which cannot import this
        package: functions become ``[module, qualified name]`` pairs."""
        return {
            "label": self.label,
            "names": list(self.names),
            "ops": list(self.ops),
            "functions": [_where(f) for f in self.functions],
            "helpers": [_where(f) for f in self.helpers],
        }


def _where(function: Callable) -> list[str]:
    """``[module, qualified name]`` of a Python function as a profiler sees it running:
    its globals' ``__name__`` and its code's ``co_qualname``."""
    module = function.__globals__.get("__name__", function.__module__)
    return [str(module), function.__code__.co_qualname]


def rule_for(item: Any, label: str | None = None) -> Rule:
    """The :class:`Rule` for a forbidden ``item``: a function, an ``nn.Module`` class or a
    dotted name (a string, resolved when its package is installed).

    ``label`` names it in messages (default: the module and qualified name of ``item``).
    The rule refuses the item's own code and name, and the kernels, torch names and
    helpers of its :data:`TABLE` entry.

    Example:
        >>> import torch.nn.functional as F
        >>> rule = rule_for(F.cross_entropy, "F.cross_entropy")
        >>> "aten::nll_loss_forward" in rule.ops, "cross_entropy_loss" in rule.names
        (True, True)
        >>> rule_for("torch.logsumexp").names
        ('logsumexp',)
    """
    if isinstance(item, str):
        obj = _resolve(item) if "." in item else None
        if obj is not None:
            return rule_for(obj, label or item)
        entry = _entry(item)
        names = {canonical(item.rsplit(".", 1)[-1])}
        names.update(canonical(op) for op in entry.ops)
        return Rule(label or item, tuple(sorted(names)), entry.ops)
    entry = _entry(item)
    names = {canonical(op) for op in entry.ops}
    if not inspect.isclass(item) and getattr(item, "__name__", None):
        names.add(canonical(item.__name__))
    own = _python_function(item)
    helpers = [_python_function(_resolve(name)) for name in entry.python]
    return Rule(
        label or label_of(item),
        tuple(sorted(names)),
        entry.ops,
        (own,) if own is not None else (),
        tuple(f for f in helpers if f is not None),
    )
