"""A forbidden built-in is refused by whatever route it is reached (issue #15, item 1).

Every name that an assignment forbids (``forbid=[F.cross_entropy, ...]`` in its test cells)
has here the routes that reach the same loss under another name: the function itself, the
``nn.Module``, ``torch.ops.aten.*``, ``torch._C._nn.*`` and ``torch.*`` bindings,
``getattr``/``importlib``, ``functools.partial``, a function built with ``exec``, the
library's private helpers, and two routes that only the kernels show (a ``torch.jit``
trace, and a call with torch functions disabled).  Each route is refused

* in-process, by the notebook's guard (``cvloss_ref.testing.CallGuard``, through
  ``assert_loss_matches`` for cross-entropy) and by the sandboxed verifier's guard
  (``grading._verifier._Forbid``) with the rules the grader sends it
  (``grading.autograde.forbid_rule``): fast, every route of every name;
* through a real sandboxed ``python -m grading autograde``, one student per route, for
  ``a02_classification`` (the cross-entropy and BCE routes) and ``a04_boxes`` (the box
  ops, which are pure Python): those cells score 0 in the notebook run and in the
  verification, and an honest student gets full marks.

Elementary operations (``log_softmax``, ``logsumexp``, ``softplus``, ...) stay allowed.
"""

from __future__ import annotations

import functools
import importlib
import math
import time

import pytest
import torch
import torch.nn.functional as F
import torchvision

from cvloss_ref._forbidden import TABLE
from cvloss_ref.testing import CallGuard, assert_loss_matches
from grading._verifier import _Forbid
from grading.autograde import forbid_rule, prelude_namespace
from grading.demo import submission
from grading.notebooks import source_notebooks
from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
from tests._env import IN_CI, NO_BWRAP

ASSIGNMENTS = [f"a0{n}_{name}" for n, name in enumerate(
    ["information", "classification", "regression", "boxes", "dense", "synthesis",
     "adversarial", "metric"], start=1)]  # fmt: skip


@functools.cache
def _namespace(assignment: str) -> dict:
    """What the notebook's locked cells define: ``F``, ``torchvision``, ``CircleLoss``..."""
    (source,) = source_notebooks(assignment)
    return prelude_namespace(source)


def _forbidden_names() -> dict[str, str]:
    """Every name some test cell forbids, with an assignment that forbids it."""
    names = {}
    for assignment in ASSIGNMENTS:
        (source,) = source_notebooks(assignment)
        for test in source.tests:
            for check in test.checks:
                for name in check.forbid:
                    names.setdefault(name, assignment)
    return names


def _resolved(name: str, assignment: str):
    """The object ``name`` names in ``assignment``'s notebook (``F.cross_entropy``)."""
    head, *rest = name.split(".")
    obj = _namespace(assignment)[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj


# ----------------------------------------------------------------------- routes


def _via_importlib(module: str, attr: str):
    return lambda *args, **kwargs: getattr(importlib.import_module(module), attr)(*args, **kwargs)


def _exec_built(module: str, attr: str):
    """A function built with ``exec`` from strings, that imports and calls ``module.attr``."""
    namespace: dict = {}
    code = (
        "import importlib\n"
        "def built(*args, **kwargs):\n"
        f"    return getattr(importlib.import_module({module!r}), {attr!r})(*args, **kwargs)\n"
    )
    exec(compile(code, "<built>", "exec"), namespace)
    return namespace["built"]


class _Jit:
    """A route: ``fn`` traced by ``torch.jit`` (before the guard starts), so that it runs
    in C++ and only its kernels are seen."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def traced(self, inputs):
        with torch.no_grad():
            return torch.jit.trace(self.fn, tuple(inputs), check_trace=False)


def _untorched(fn):
    """``fn`` with torch functions (and so every ``TorchFunctionMode``) disabled."""

    def run(*args):
        with torch._C.DisableTorchFunction():
            return fn(*args)

    return run


def _generic(module: str, attr: str, obj) -> dict:
    """The routes every forbidden function has: itself, ``getattr(importlib...)``, a
    ``functools.partial`` and an ``exec``-built function."""
    if isinstance(obj, type):  # a class (a miner, a loss module): its instances' call
        return {
            "the class": lambda *a: obj()(*a),
            "getattr/importlib": lambda *a: getattr(importlib.import_module(module), attr)()(*a),
            "exec": lambda *a: _exec_built(module, attr)()(*a),
        }
    return {
        "the function": obj,
        "getattr/importlib": _via_importlib(module, attr),
        "functools.partial": lambda first, *rest: functools.partial(obj, first)(*rest),
        "exec": _exec_built(module, attr),
    }


def _logits():
    return torch.randn(4, 3, requires_grad=True)


def _classes():
    return torch.tensor([0, 2, 1, 0])


def _boxes():
    corner = torch.rand(5, 2) * 4
    return torch.cat([corner, corner + 0.5 + torch.rand(5, 2)], dim=1).requires_grad_()


ATEN = torch.ops.aten
NN = torch._C._nn
INPUTS = {
    "ce": lambda: (_logits(), _classes()),
    "nll": lambda: (torch.log_softmax(_logits(), 1).detach().requires_grad_(), _classes()),
    "bce": lambda: (torch.randn(6, requires_grad=True), torch.rand(6)),
    "prob": lambda: (torch.rand(6, requires_grad=True).clamp(0.01, 0.99), torch.rand(6)),
    "pair": lambda: (torch.randn(6, requires_grad=True), torch.randn(6)),
    "kl": lambda: (torch.log_softmax(_logits(), 1), torch.softmax(torch.randn(4, 3), 1)),
    "hinge": lambda: (torch.randn(6, requires_grad=True), torch.tensor([1.0, -1] * 3)),
    "entr": lambda: (torch.rand(6, requires_grad=True),),
    "einsum": lambda: ("ij,kj->ik", _logits(), torch.randn(5, 3)),
    "points": lambda: (torch.randn(5, 3, requires_grad=True), torch.randn(4, 3)),
    "vectors": lambda: (_logits(), torch.randn(4, 3)),
    "cloud": lambda: (torch.randn(5, 3, requires_grad=True),),
    "triplet": lambda: (_logits(), torch.randn(4, 3), torch.randn(4, 3)),
    "boxes": lambda: (_boxes(), _boxes()),
    "nms": lambda: (_boxes().detach(), torch.rand(5), 0.3),
    "batched": lambda: (_boxes().detach(), torch.rand(5), torch.tensor([0, 1, 0, 1, 0]), 0.3),
    "image": lambda: (torch.rand(1, 3, 5, 5, requires_grad=True),),
    "embeddings": lambda: (torch.randn(8, 4, requires_grad=True), torch.tensor([0, 1] * 4)),
}

#: Per forbidden name: its module and attribute (for importlib), its inputs, and the routes
#: besides the generic ones (each a function of the inputs).  Routes marked ``kernel`` are
#: seen only at the dispatch level.
SPECS = {
    "F.cross_entropy": ("torch.nn.functional", "cross_entropy", "ce", {
        "nn.CrossEntropyLoss": lambda x, t: torch.nn.CrossEntropyLoss()(x, t),
        "torch.ops.aten.cross_entropy_loss": lambda x, t: ATEN.cross_entropy_loss(
            x, t, None, 1, -100, 0.0),
        "torch._C._nn.cross_entropy_loss": lambda x, t: NN.cross_entropy_loss(x, t),
        "torch._C._nn.nll_loss_nd": lambda x, t: NN.nll_loss_nd(torch.log_softmax(x, 1), t),
        "torch.ops.aten.nll_loss_forward": lambda x, t: ATEN.nll_loss_forward(
            torch.log_softmax(x, 1), t, None, 1, -100)[0],
        "jit trace": _Jit(F.cross_entropy),
        "kernel: torch functions off": _untorched(NN.cross_entropy_loss),
    }),
    "F.nll_loss": ("torch.nn.functional", "nll_loss", "nll", {
        "nn.NLLLoss": lambda x, t: torch.nn.NLLLoss()(x, t),
        "torch.ops.aten.nll_loss": lambda x, t: ATEN.nll_loss(x, t),
        "torch._C._nn.nll_loss2d": lambda x, t: NN.nll_loss2d(
            x.T[None, :, :, None], t[None, :, None]),
        "jit trace": _Jit(F.nll_loss),
        "kernel: torch functions off": _untorched(NN.nll_loss),
    }),
    "F.binary_cross_entropy_with_logits": (
        "torch.nn.functional", "binary_cross_entropy_with_logits", "bce", {
        "nn.BCEWithLogitsLoss": lambda x, t: torch.nn.BCEWithLogitsLoss()(x, t),
        "torch.ops.aten.binary_cross_entropy_with_logits":
            lambda x, t: ATEN.binary_cross_entropy_with_logits(x, t),
        "torch.binary_cross_entropy_with_logits":
            lambda x, t: torch.binary_cross_entropy_with_logits(x, t, None, None, 1),
        "F.binary_cross_entropy of sigmoid": lambda x, t: F.binary_cross_entropy(x.sigmoid(), t),
        "jit trace": _Jit(F.binary_cross_entropy_with_logits),
        "kernel: torch functions off": _untorched(
            lambda x, t: torch.binary_cross_entropy_with_logits(x, t, None, None, 1)),
    }),
    "F.binary_cross_entropy": ("torch.nn.functional", "binary_cross_entropy", "prob", {
        "nn.BCELoss": lambda p, t: torch.nn.BCELoss()(p, t),
        "torch.ops.aten.binary_cross_entropy": lambda p, t: ATEN.binary_cross_entropy(p, t),
        "torch._C._nn.binary_cross_entropy": lambda p, t: NN.binary_cross_entropy(p, t),
        "kernel: torch functions off": _untorched(NN.binary_cross_entropy),
    }),
    "F.mse_loss": ("torch.nn.functional", "mse_loss", "pair", {
        "nn.MSELoss": lambda x, y: torch.nn.MSELoss()(x, y),
        "torch.ops.aten.mse_loss": lambda x, y: ATEN.mse_loss(x, y),
        "torch._C._nn.mse_loss": lambda x, y: NN.mse_loss(x, y),
        "jit trace": _Jit(F.mse_loss),
        "kernel: torch functions off": _untorched(NN.mse_loss),
    }),
    "F.l1_loss": ("torch.nn.functional", "l1_loss", "pair", {
        "nn.L1Loss": lambda x, y: torch.nn.L1Loss()(x, y),
        "torch.ops.aten.l1_loss": lambda x, y: ATEN.l1_loss(x, y),
        "torch._C._nn.l1_loss": lambda x, y: NN.l1_loss(x, y),
        "binding: torch functions off": _untorched(NN.l1_loss),
    }),
    "F.smooth_l1_loss": ("torch.nn.functional", "smooth_l1_loss", "pair", {
        "nn.SmoothL1Loss": lambda x, y: torch.nn.SmoothL1Loss()(x, y),
        "torch.ops.aten.smooth_l1_loss": lambda x, y: ATEN.smooth_l1_loss(x, y),
        "torch._C._nn.smooth_l1_loss": lambda x, y: NN.smooth_l1_loss(x, y),
        "kernel: huber_loss": _untorched(NN.huber_loss),
        "kernel: torch functions off": _untorched(NN.smooth_l1_loss),
    }),
    "F.huber_loss": ("torch.nn.functional", "huber_loss", "pair", {
        "nn.HuberLoss": lambda x, y: torch.nn.HuberLoss()(x, y),
        "torch.ops.aten.huber_loss": lambda x, y: ATEN.huber_loss(x, y),
        "torch._C._nn.huber_loss": lambda x, y: NN.huber_loss(x, y),
        "jit trace": _Jit(F.huber_loss),
        "kernel: torch functions off": _untorched(NN.huber_loss),
    }),
    "F.kl_div": ("torch.nn.functional", "kl_div", "kl", {
        "nn.KLDivLoss": lambda x, y: torch.nn.KLDivLoss(reduction="batchmean")(x, y),
        "torch.ops.aten.kl_div": lambda x, y: ATEN.kl_div(x, y),
        "torch.kl_div": lambda x, y: torch.kl_div(x, y),
        "binding: torch functions off": _untorched(lambda x, y: torch.kl_div(x, y)),
    }),
    "F.hinge_embedding_loss": ("torch.nn.functional", "hinge_embedding_loss", "hinge", {
        "nn.HingeEmbeddingLoss": lambda x, y: torch.nn.HingeEmbeddingLoss()(x, y),
        "torch.ops.aten.hinge_embedding_loss": lambda x, y: ATEN.hinge_embedding_loss(x, y),
        "torch.hinge_embedding_loss": lambda x, y: torch.hinge_embedding_loss(x, y),
        "binding: torch functions off": _untorched(
            lambda x, y: torch.hinge_embedding_loss(x, y)),
    }),
    "F.multi_margin_loss": ("torch.nn.functional", "multi_margin_loss", "ce", {
        "nn.MultiMarginLoss": lambda x, t: torch.nn.MultiMarginLoss()(x, t),
        "torch.ops.aten.multi_margin_loss": lambda x, t: ATEN.multi_margin_loss(x, t),
        "torch._C._nn.multi_margin_loss": lambda x, t: NN.multi_margin_loss(x, t),
        "jit trace": _Jit(F.multi_margin_loss),
        "kernel: torch functions off": _untorched(NN.multi_margin_loss),
    }),
    "torch.special.entr": ("torch.special", "entr", "entr", {
        "torch.ops.aten.special_entr": lambda p: ATEN.special_entr(p),
        "torch._C._special.special_entr": lambda p: torch._C._special.special_entr(p),
        "kernel: torch functions off": _untorched(torch._C._special.special_entr),
    }),
    "torch.einsum": ("torch", "einsum", "einsum", {
        "torch.ops.aten.einsum": lambda eq, a, b: ATEN.einsum(eq, [a, b]),
        "torch._C._VariableFunctions.einsum": lambda eq, a, b: torch._C._VariableFunctions.einsum(
            eq, [a, b]),
        "binding: torch functions off": _untorched(
            lambda eq, a, b: torch._C._VariableFunctions.einsum(eq, [a, b])),
    }),
    "torch.cdist": ("torch", "cdist", "points", {
        "torch.ops.aten.cdist": lambda a, b: ATEN.cdist(a, b, 2.0),
        "torch.ops.aten._cdist_forward": lambda a, b: ATEN._cdist_forward(a, b, 2.0, None),
        "jit trace": _Jit(torch.cdist),
        "kernel: torch functions off": _untorched(lambda a, b: ATEN.cdist(a, b, 2.0)),
    }),
    "torch.pdist": ("torch", "pdist", "cloud", {
        "F.pdist": lambda a: F.pdist(a),
        "torch.ops.aten._pdist_forward": lambda a: ATEN._pdist_forward(a, 2.0),
        "kernel: torch functions off": _untorched(lambda a: ATEN.pdist(a)),
    }),
    "F.pairwise_distance": ("torch.nn.functional", "pairwise_distance", "vectors", {
        "nn.PairwiseDistance": lambda a, b: torch.nn.PairwiseDistance()(a, b),
        "torch.ops.aten.pairwise_distance": lambda a, b: ATEN.pairwise_distance(a, b),
        "torch.pairwise_distance": lambda a, b: torch.pairwise_distance(a, b),
        "binding: torch functions off": _untorched(lambda a, b: torch.pairwise_distance(a, b)),
    }),
    "F.triplet_margin_loss": ("torch.nn.functional", "triplet_margin_loss", "triplet", {
        "nn.TripletMarginLoss": lambda a, p, n: torch.nn.TripletMarginLoss()(a, p, n),
        "torch.ops.aten.triplet_margin_loss": lambda a, p, n: ATEN.triplet_margin_loss(a, p, n),
        "torch.triplet_margin_loss": lambda a, p, n: torch.triplet_margin_loss(a, p, n),
        "binding: torch functions off": _untorched(
            lambda a, p, n: torch.triplet_margin_loss(a, p, n)),
    }),
    "torchvision.ops.box_iou": ("torchvision.ops", "box_iou", "boxes", {
        "torchvision.ops.boxes.box_iou": lambda a, b: torchvision.ops.boxes.box_iou(a, b),
        "helper _box_inter_union": lambda a, b: torchvision.ops.boxes._box_inter_union(a, b),
        "helper _loss_inter_union": lambda a, b: torchvision.ops._utils._loss_inter_union(a, b),
    }),
    "torchvision.ops.generalized_box_iou": ("torchvision.ops", "generalized_box_iou", "boxes", {
        "torchvision.ops.boxes.generalized_box_iou":
            lambda a, b: torchvision.ops.boxes.generalized_box_iou(a, b),
    }),
    "torchvision.ops.generalized_box_iou_loss": (
        "torchvision.ops", "generalized_box_iou_loss", "boxes", {
        "torchvision.ops.giou_loss.generalized_box_iou_loss":
            lambda a, b: torchvision.ops.giou_loss.generalized_box_iou_loss(a, b),
    }),
    "torchvision.ops.distance_box_iou": ("torchvision.ops", "distance_box_iou", "boxes", {
        "helper _box_diou_iou": lambda a, b: torchvision.ops.boxes._box_diou_iou(a, b),
    }),
    "torchvision.ops.distance_box_iou_loss": ("torchvision.ops", "distance_box_iou_loss", "boxes", {
        "helper _diou_iou_loss": lambda a, b: torchvision.ops.diou_loss._diou_iou_loss(a, b),
    }),
    "torchvision.ops.complete_box_iou": ("torchvision.ops", "complete_box_iou", "boxes", {}),
    "torchvision.ops.complete_box_iou_loss": (
        "torchvision.ops", "complete_box_iou_loss", "boxes", {}),
    "torchvision.ops.nms": ("torchvision.ops", "nms", "nms", {
        "torch.ops.torchvision.nms": lambda b, s, t: torch.ops.torchvision.nms(b, s, t),
        "kernel: torch functions off": _untorched(torch.ops.torchvision.nms),
    }),
    "torchvision.ops.batched_nms": ("torchvision.ops", "batched_nms", "batched", {
        "kernel: torch functions off": _untorched(
            lambda b, s, i, t: torch.ops.torchvision.nms(b, s, t)),
    }),
    "kornia_total_variation": ("kornia.losses", "total_variation", "image", {
        "kornia.losses.TotalVariation": lambda x: __import__("kornia").losses.TotalVariation()(x),
    }),
    "CircleLoss": ("pytorch_metric_learning.losses", "CircleLoss", "embeddings", {}),
    "TripletMarginMiner": (
        "pytorch_metric_learning.miners", "TripletMarginMiner", "embeddings", {}),
    "BatchHardMiner": ("pytorch_metric_learning.miners", "BatchHardMiner", "embeddings", {}),
}  # fmt: skip

FORBIDDEN = _forbidden_names()


def _routes(name: str) -> dict:
    module, attr, _, extra = SPECS[name]
    obj = _resolved(name, FORBIDDEN[name])
    if isinstance(obj, str):  # an optional library that is not installed
        pytest.skip(f"{obj} is not installed")
    return {**_generic(module, attr, obj), **extra}


def _cases():
    """(forbidden name, route) for every route, the generic ones included."""
    cases = []
    for name in sorted(FORBIDDEN):
        extra = SPECS[name][3] if name in SPECS else {}
        generic = ["the function", "getattr/importlib", "functools.partial", "exec"]
        if name in ("CircleLoss", "TripletMarginMiner", "BatchHardMiner"):
            generic = ["the class", "getattr/importlib", "exec"]
        cases += [pytest.param(name, route, id=f"{name}-{route}") for route in [*generic, *extra]]
    return cases


def test_every_forbidden_name_has_its_routes_and_a_table_entry_where_torch_has_one():
    """A name an assignment forbids without routes here would be forbidden untested; one
    of torch or torchvision without a table entry would have no kernels."""
    assert set(FORBIDDEN) <= set(SPECS), f"no routes for {sorted(set(FORBIDDEN) - set(SPECS))}"
    for name, assignment in FORBIDDEN.items():
        obj = _resolved(name, assignment)
        module = getattr(obj, "__module__", "") or ""
        if module.startswith(("torch", "torchvision")):
            assert any(obj is _resolved_table(key) for key in TABLE), (
                f"{name} has no entry in cvloss_ref._forbidden.TABLE"
            )


def _resolved_table(key: str):
    module, _, attr = key.rpartition(".")
    return getattr(importlib.import_module(module), attr, None)


def _run_route(name: str, route: str):
    """The route's function (traced already, for a ``torch.jit`` route), and inputs."""
    fn = _routes(name)[route]
    torch.manual_seed(0)
    inputs = INPUTS[SPECS[name][2]]()
    return (fn.traced(inputs) if isinstance(fn, _Jit) else fn), inputs


@pytest.mark.parametrize(("name", "route"), _cases())
def test_the_notebook_guard_refuses_every_route(name, route):
    fn, inputs = _run_route(name, route)
    guard = CallGuard(forbid=[_resolved(name, FORBIDDEN[name])])
    guard.call(fn, *inputs)
    assert guard.hits, f"{route} reaches {name} unseen"
    assert len(guard.hits) == 1, guard.hits


@pytest.mark.parametrize(("name", "route"), _cases())
def test_the_verifier_guard_refuses_every_route_with_the_rules_the_grader_sends(name, route):
    fn, inputs = _run_route(name, route)
    rule = forbid_rule(name, _namespace(FORBIDDEN[name]))
    assert rule["label"] == name
    with _Forbid([rule]) as guard:
        fn(*inputs)
    assert guard.hits and guard.hits[0].startswith(name), f"{route} reaches {name} unseen"


ELEMENTARY = {
    "log_softmax, gather": lambda x, t: -torch.log_softmax(x, 1).gather(1, t[:, None]).mean(),
    "logsumexp": lambda x, t: (torch.logsumexp(x, 1) - x[torch.arange(4), t]).sum(),
    "softplus, logsigmoid": lambda x, t: F.softplus(x).sum() - F.logsigmoid(x).sum(),
    "sigmoid, clamp, abs, where": lambda x, t: torch.where(
        x > 0, x.sigmoid(), x.abs().clamp(max=1)
    ).sum(),
    "norm, sqrt, atan, maximum": lambda x, t: (
        torch.linalg.vector_norm(x, dim=1).sqrt().sum() + torch.atan(torch.maximum(x, -x)).sum()
    ),
    "matmul, softmax, log": lambda x, t: (x @ x.T).softmax(1).clamp_min(1e-9).log().sum(),
    "a gradient inside": lambda x, t: (
        torch.autograd.grad(torch.log_softmax(x, 1).sum(), x, create_graph=True)[0].square().sum()
    ),
}


@pytest.mark.parametrize("route", ELEMENTARY)
def test_elementary_operations_stay_allowed_under_every_forbidden_name(route):
    """Forbidding every name of every assignment at once refuses none of the elementary
    operations a student needs, in the notebook and in the verifier, nor their backward."""
    objects = [_resolved(name, assignment) for name, assignment in FORBIDDEN.items()]
    guard = CallGuard(forbid=objects)
    inputs = (torch.randn(4, 3, requires_grad=True), _classes())
    out = guard.call(ELEMENTARY[route], *inputs)
    guard.call(out.backward)
    assert guard.hits == []
    rules = [forbid_rule(name, _namespace(a)) for name, a in FORBIDDEN.items()]
    with _Forbid(rules) as verifier_guard:
        ELEMENTARY[route](*inputs).backward()
    assert verifier_guard.hits == []


# ------------------------------------------------- a02: the cross-entropy routes, end to end

CE_HEAD = '''
def cross_entropy(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    """Softmax cross-entropy through {route}."""
    red = ["none", "mean", "sum"].index(reduction)
'''
CE_TAIL = "    return torch.nan_to_num(out) if reduction == 'mean' else out\n"
#: The bodies of cross_entropy (after CE_HEAD) that reach the forbidden loss: each would
#: pass every test cell, hidden ones included, were it not forbidden.
CE_ROUTES = {
    "aten": "    out = torch.ops.aten.cross_entropy_loss(\n"
    "        logits, target, weight, red, ignore_index, label_smoothing\n    )\n",
    "c_nn": "    out = torch._C._nn.cross_entropy_loss(\n"
    "        logits, target, weight, red, ignore_index, label_smoothing\n    )\n",
    "module": "    out = torch.nn.CrossEntropyLoss(\n"
    "        weight=weight, ignore_index=ignore_index, reduction=reduction,\n"
    "        label_smoothing=label_smoothing,\n    )(logits, target)\n",
    "importlib": "    import importlib\n\n"
    "    functional = importlib.import_module('torch.nn.' + 'functional')\n"
    "    loss = getattr(functional, 'cross_' + 'entropy')\n"
    "    out = loss(logits, target, weight, ignore_index=ignore_index, reduction=reduction,\n"
    "               label_smoothing=label_smoothing)\n",
    "partial": "    import functools\n\n"
    "    loss = functools.partial(F.cross_entropy, weight=weight, ignore_index=ignore_index)\n"
    "    out = loss(logits, target, reduction=reduction, label_smoothing=label_smoothing)\n",
    "exec": "    namespace = {}\n"
    "    exec('import torch\\ndef ce(*a):\\n    return torch.ops.aten.cross_entropy_loss(*a)',"
    " namespace)\n"
    "    out = namespace['ce'](logits, target, weight, red, ignore_index, label_smoothing)\n",
    "off": "    with torch._C.DisableTorchFunction():\n"
    "        out = torch._C._nn.cross_entropy_loss(\n"
    "            logits, target, weight, red, ignore_index, label_smoothing\n        )\n",
}
#: Also routes, whose cells would fail on some case anyway (no label smoothing in NLL).
NLL_ROUTE = "    out = torch._C._nn.nll_loss_nd(\n" \
    "        torch.log_softmax(logits, 0 if logits.dim() == 1 else 1), target, weight, red," \
    " ignore_index\n    )\n"  # fmt: skip
BCE_ROUTE = '''
def binary_cross_entropy_with_logits(
    logits, target, weight=None, pos_weight=None, reduction="mean"
):
    """BCE through the ATen op."""
    red = ["none", "mean", "sum"].index(reduction)
    return torch.ops.aten.binary_cross_entropy_with_logits(logits, target, weight, pos_weight, red)
'''
CE_CELLS = {
    "test_cross_entropy_stable",
    "test_cross_entropy_label_smoothing",
    "test_cross_entropy_hidden",
}
BCE_CELLS = {c.replace("cross_entropy", "binary_cross_entropy_with_logits") for c in CE_CELLS}
BCE_CELLS = {c.replace("label_smoothing", "weights") for c in BCE_CELLS}


def _ce_cell(route: str) -> str:
    body = NLL_ROUTE if route == "nll_loss_nd" else CE_ROUTES[route]
    return CE_HEAD.format(route=route) + body + CE_TAIL


def _defined(code: str, name: str):
    namespace = {"torch": torch, "F": F}
    exec(compile(code, "<cell>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("route", CE_ROUTES)
def test_each_cross_entropy_route_would_pass_were_it_not_forbidden(route):
    """So that what refuses them below is the forbid list, not a wrong value."""
    fn = _defined(_ce_cell(route), "cross_entropy")
    assert_loss_matches(fn, "cross_entropy", forbid=[])
    assert_loss_matches(fn, "cross_entropy", forbid=[], label_smoothing=0.1)


@pytest.mark.parametrize("route", [*CE_ROUTES, "nll_loss_nd"])
def test_assert_loss_matches_refuses_each_cross_entropy_route_and_names_it(route):
    fn = _defined(_ce_cell(route), "cross_entropy")
    with pytest.raises(AssertionError) as failure:
        assert_loss_matches(fn, "cross_entropy", forbid=[F.cross_entropy, F.nll_loss])
    message = str(failure.value)
    assert "torch.nn.functional.cross_entropy" in message
    assert "does not allow" in message


def _a02_students() -> dict[str, dict[str, str]]:
    """Per student, the solution cells replaced (one route each; "honest": none)."""
    students = {"honest": {}}
    for route in [*CE_ROUTES, "nll_loss_nd"]:
        students[f"ce-{route}"] = {"cross_entropy": _ce_cell(route)}
    students["ce-aten"]["binary_cross_entropy_with_logits"] = BCE_ROUTE
    return students


# ------------------------------------------------------- a04: the box-op routes, end to end

BOX_IOU = '''
def box_iou(boxes1, boxes2):
    """Pairwise IoU through {route}."""
{body}'''
BOX_ROUTES = {
    "torchvision": "    return torchvision.ops.box_iou(boxes1, boxes2)\n",
    "importlib": "    import importlib\n\n"
    "    ops = importlib.import_module('torchvision.ops.' + 'boxes')\n"
    "    return getattr(ops, 'box_' + 'iou')(boxes1, boxes2)\n",
    "partial": "    import functools\n\n"
    "    return functools.partial(torchvision.ops.box_iou, boxes1)(boxes2)\n",
    "exec": "    namespace = {}\n"
    "    exec('import torchvision\\nf = torchvision.ops.box_iou', namespace)\n"
    "    return namespace['f'](boxes1, boxes2)\n",
    "helper": "    from torchvision.ops.boxes import _box_inter_union\n\n"
    "    inter, union = _box_inter_union(boxes1, boxes2)\n"
    "    return torch.where(union > 0, inter / union.clamp_min(1e-30), 0.0)\n",
}
IOU_HELPER = '''
def iou_loss(pred, target, mode="linear", eps=1e-7, reduction="mean", *, box_format="xyxy"):
    """IoU loss through torchvision's private helper."""
    from torchvision.ops._utils import _loss_inter_union

    inter, union = _loss_inter_union(to_xyxy(pred, box_format), to_xyxy(target, box_format))
    iou = inter / (union + eps)
    loss = 1 - iou if mode == "linear" else -torch.log(iou.clamp(min=eps))
    return reduce_loss(loss, reduction)
'''
DIOU_HELPER = '''
def diou_loss(pred, target, eps=1e-7, reduction="mean", *, box_format="xyxy"):
    """DIoU loss through torchvision's private helper."""
    from torchvision.ops.diou_loss import _diou_iou_loss

    loss, _ = _diou_iou_loss(to_xyxy(pred, box_format), to_xyxy(target, box_format), eps)
    return reduce_loss(loss, reduction)
'''


def _a04_students() -> dict[str, dict[str, str]]:
    students = {"honest": {}}
    for route, body in BOX_ROUTES.items():
        students[f"box-{route}"] = {"box_iou": BOX_IOU.format(route=route, body=body)}
    students["box-helper"].update(iou_loss=IOU_HELPER, diou_loss=DIOU_HELPER)
    return students


def _lost(assignment: str, replaced: dict[str, str]) -> set[str]:
    """The test cells of the functions ``replaced``."""
    (source,) = source_notebooks(assignment)
    return {t.grade_id for t in source.tests if set(t.functions) & set(replaced)}


# ----------------------------------------------------------------------- sandboxed batches

STUDENTS = {"a02_classification": _a02_students, "a04_boxes": _a04_students}


def _grade(assignment: str, root) -> dict:
    """One autograde run of ``assignment``: one student per route, and an honest one."""
    batch = batches.new_batch(root)
    for student, replaced in STUDENTS[assignment]().items():
        name, notebook = submission(assignment, replaced)
        batches.write(batch, assignment, student, name, notebook)
    start = time.monotonic()
    batches.grade(batch, [assignment], jobs=2, timeout=60)
    return {
        "batch": batch.state(),
        "left": batches.survivors(batch),
        "seconds": time.monotonic() - start,
    }


@pytest.fixture(scope="module", params=list(STUDENTS))
def graded(request, tmp_path_factory):
    if not (bwrap_works() or IN_CI):
        pytest.skip(NO_BWRAP)
    assignment = request.param
    state = batches.once(
        tmp_path_factory, f"forbidden-{assignment}", functools.partial(_grade, assignment)
    )
    batch = batches.Batch.from_state(state["batch"])
    return assignment, batch, state


@pytest.mark.slow
def test_sandboxed_autograde_refuses_every_route_and_passes_the_honest_student(graded):
    assignment, batch, state = graded
    run = batch.runs[assignment]
    assert run.returncode == 0, run.stderr[-3000:]
    students = STUDENTS[assignment]()
    honest = batch.results[(assignment, "honest")]
    assert honest["score"] == honest["max_score"] > 0, batches.cells(honest)
    for student, replaced in students.items():
        result = batch.results[(assignment, student)]
        lost = _lost(assignment, replaced)
        batches.expect_lost(result, lost)
        for grade_id in lost:
            cell = batches.cells(result)[grade_id]
            # refused twice: by the notebook's harness and by the trusted verification
            assert cell["notebook"] != "ok", f"{student}: {grade_id} passed in the notebook"
            assert cell["verified"] is False, f"{student}: {grade_id} passed the verification"
            assert "does not allow" in cell["message"], (student, grade_id, cell["message"])
    assert state["left"] == []
    assert math.isfinite(state["seconds"])
