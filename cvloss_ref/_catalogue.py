"""The data model of the checking catalogue (see :mod:`cvloss_ref.testing`).

Every public loss registers one :class:`LossSpec` in :data:`CATALOGUE`, from the
family's module in ``cvloss_ref/cases/``.  A spec lists the *cases* a student's
implementation is run on (random inputs and named edge cases), which positional
inputs are differentiated (the ones a model produces), and *known mistakes*:
deliberately wrong implementations whose output, when a student's output
matches it, explains the failure with a hint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

#: ``make(generator, dtype) -> (inputs, kwargs)``: builds one case on the CPU.
#: Floating tensors are created in ``dtype``; integer tensors keep their dtype.
CaseMaker = Callable[[torch.Generator, torch.dtype], tuple[tuple, dict]]

DEFAULT_DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class Case:
    """One named input of a loss's catalogue.

    Attributes:
        name: what the case is, in words a student recognises ("saturated logits
            (±1e4)", "all targets ignored").
        make: builds ``(inputs, kwargs)`` from a seeded generator and a float dtype.
        grad: ``"compare"`` (gradients must match the reference), ``"finite"``
            (gradients must only be finite: the point is a convention where
            correct formulations may differ) or ``"none"`` (values only).
        dtypes: the floating dtypes the case runs in.
        note: one sentence on what the case checks, shown when it fails.
    """

    name: str
    make: CaseMaker
    grad: str = "compare"
    dtypes: tuple[torch.dtype, ...] = DEFAULT_DTYPES
    note: str = ""

    def __post_init__(self) -> None:
        if self.grad not in ("compare", "finite", "none"):
            raise ValueError(f"Case.grad must be 'compare', 'finite' or 'none', got {self.grad!r}")


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong implementation (same signature as the loss) and the hint
    to give when a student's output matches its output instead of the reference's."""

    fn: Callable
    hint: str


@dataclass(frozen=True)
class LossSpec:
    """The catalogue entry of one public loss.

    Attributes:
        name: the public name in ``cvloss_ref``.
        cases: the cases every check runs.
        grad_inputs: indices of the positional inputs whose gradients are
            compared (logits, probabilities, predicted boxes, embeddings, ...;
            never labels or targets).
        mistakes: known wrong implementations, for hints and as test fixtures.
    """

    name: str
    cases: tuple[Case, ...]
    grad_inputs: tuple[int, ...] = (0,)
    mistakes: tuple[Mistake, ...] = field(default_factory=tuple)


CATALOGUE: dict[str, LossSpec] = {}


def register(spec: LossSpec) -> LossSpec:
    """Add ``spec`` to :data:`CATALOGUE` (one spec per public name).

    Registering a name again replaces its entry: a cases module imported twice
    (as pytest's doctest collection does) must not fail.
    """
    names = [case.name for case in spec.cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names of {spec.name!r} must be unique, got {names}")
    CATALOGUE[spec.name] = spec
    return spec
