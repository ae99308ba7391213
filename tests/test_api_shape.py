"""One API shape: the argument names and the reduction of every public function.

The rules are those stated in the package docstring (``cvloss_ref/__init__.py``):

- the first argument is named for what it holds (``logits``, ``probs``, ``p``,
  ``input``, ``scores``, ``pred``, ``embeddings``, ...), with the partners the rule
  gives it (a prediction is followed by ``target``, ``p`` by ``q``, ``x1`` by ``x2``);
- every function that reduces per-sample values takes ``reduction=`` with the
  default ``"mean"``; ``"sum"`` adds the values of ``"none"``, ``"mean"`` averages
  them unless the docstring names another denominator, and a ``"mean"`` over nothing
  is 0 with a zero gradient; a function without ``reduction=`` returns its values
  unreduced.

Each rule is a function returning the violations it finds, so that a test can also
show that it catches a function that breaks it (the loss of issue #19 item 5,
``cycle_consistency_loss`` before it had ``reduction=``, among them).  The values
come from the catalogue's cases (``cvloss_ref/cases/``), in float64.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

import cvloss_ref
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import loss_names

# --------------------------------------------------------------------------- names

#: The first argument's name and what it holds: the vocabulary of the package docstring.
FIRST_ARGUMENT = {
    "logits": "real-valued class scores before a sigmoid or softmax",
    "real_logits": "a discriminator's raw outputs on real samples",
    "fake_logits": "a discriminator's raw outputs on generated samples",
    "probs": "probabilities in [0, 1]",
    "logits_or_probs": "logits or probabilities, as from_logits= says",
    "p": "a probability distribution",
    "input": "the input of the torch.nn.functional loss of the same name",
    "scores": "decision values of a binary margin classifier",
    "pred": "a prediction in the space of its target",
    "pred_feats": "feature maps of the prediction",
    "embeddings": "the rows of one batch, compared with one another",
    "x1": "the first embedding of a pair",
    "anchor": "the anchor of a triplet",
    "critic": "the critic of WGAN-GP",
    "real_a": "images of domain A",
    "boxes": "boxes",
    "boxes1": "the first set of boxes",
    "features": "feature maps",
    "images": "images",
    "mask": "an instance mask",
    "target": "class indices to turn into soft targets",
}

#: Names that hold a prediction compared with a ground truth, which comes second.
PREDICTIONS = {"logits", "probs", "logits_or_probs", "input", "scores", "pred"}

#: What may follow a first argument that is not a prediction.
PARTNERS = {
    "p": ("q", "dim", "base"),  # a second distribution, or none
    "pred_feats": ("style_feats", "content_feats"),
    "embeddings": ("labels", "squared"),
    "x1": ("x2",),
    "anchor": ("positive",),
    "real_logits": ("fake_logits",),
    "fake_logits": ("kind",),
    "critic": ("real",),
    "real_a": ("rec_a",),
}

#: Public names that take no data tensor first: settings and model building.
NOT_DATA = {
    "set_compile",
    "set_debug",
    "compile_mode",
    "debug_enabled",
    "FeatureExtractor",
    "vgg16_features",
}


def _parameters(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def naming_violations(fn) -> list[str]:
    """Where ``fn``'s argument names break the rule of the package docstring."""
    params = _parameters(fn)
    name = fn.__name__
    if not params:
        return [f"{name} takes no argument"]
    first, rest = params[0], params[1:]
    if first not in FIRST_ARGUMENT:
        return [f"{name}: first argument {first!r} is not one of {sorted(FIRST_ARGUMENT)}"]
    found = []
    if first in PREDICTIONS and rest[:1] != ["target"]:
        found.append(
            f"{name}: the prediction {first!r} must be followed by 'target', got {rest[:1]}"
        )
    if first in PARTNERS and rest[:1] and rest[0] not in PARTNERS[first]:
        found.append(
            f"{name}: {first!r} must be followed by one of {PARTNERS[first]}, got {rest[0]!r}"
        )
    if first == "input":
        peer = getattr(F, name, None)
        mirrors = callable(peer) and _parameters(peer)[:1] == ["input"]
        if not (mirrors or fn.__module__ == "cvloss_ref.regression"):
            found.append(
                f"{name}: 'input' only for a torch.nn.functional loss of the same name or a "
                "regression loss; name the tensor for what it holds"
            )
    if first == "p" and fn.__module__ != "cvloss_ref.information":
        found.append(f"{name}: 'p' is a distribution of the information-theory family")
    if (first == "logits_or_probs") != ("from_logits" in params):
        found.append(f"{name}: 'logits_or_probs' goes with a from_logits= flag, and only it")
    if first == "anchor" and rest[:2] != ["positive", "negative"]:
        found.append(f"{name}: an anchor is followed by positive and negative, got {rest[:2]}")
    if first == "real_a" and rest[:3] != ["rec_a", "real_b", "rec_b"]:
        found.append(f"{name}: real_a is followed by rec_a, real_b, rec_b, got {rest[:3]}")
    return found


PUBLIC = [name for name in cvloss_ref.__all__ if name not in NOT_DATA]


@pytest.mark.parametrize("name", PUBLIC)
def test_first_argument_follows_the_naming_rule(name):
    assert naming_violations(getattr(cvloss_ref, name)) == []


def test_every_public_name_is_classified():
    assert NOT_DATA <= set(cvloss_ref.__all__)
    for name in NOT_DATA:  # no data tensor: the rule does not apply
        params = _parameters(getattr(cvloss_ref, name))
        assert not set(params) & set(FIRST_ARGUMENT) - {"target"}, name


def test_every_name_of_the_rule_is_used_and_stated_in_the_package_docstring():
    used = {_parameters(getattr(cvloss_ref, name))[0] for name in PUBLIC}
    assert used == set(FIRST_ARGUMENT), "the vocabulary and the package have drifted apart"
    for word in FIRST_ARGUMENT:
        assert f"``{word}``" in cvloss_ref.__doc__, f"the package docstring does not state {word!r}"


def test_the_naming_rule_catches_a_function_that_breaks_it():
    def bad_first(x, target, reduction="mean"):
        pass

    def bad_partner(logits, labels, reduction="mean"):
        pass

    def cross_entropy_like(input, target, reduction="mean"):  # logits under a neutral name
        pass

    def bad_distribution(p, target):
        pass

    def bad_dice(logits_or_probs, target):  # no from_logits= to say which
        pass

    for fn in (bad_first, bad_partner, cross_entropy_like, bad_distribution, bad_dice):
        assert naming_violations(fn), fn.__name__


# --------------------------------------------------------------------------- reduction

CATALOGUED = loss_names()  # loads the catalogue
REDUCED = [name for name in CATALOGUED if "reduction" in _parameters(getattr(cvloss_ref, name))]
UNREDUCED = [name for name in CATALOGUED if name not in REDUCED]

#: Losses whose "sum" is not the sum of their "none", by definition.
SUM_IS_NOT_SUM_OF_NONE = {"rmse_loss"}  # the root is taken after the reduction

#: Losses whose "mean" has a denominator of its own, named in their docstrings and in
#: the package docstring.
OWN_MEAN = {
    "cross_entropy",
    "softmax_focal_loss",
    "weighted_pixel_cross_entropy",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "circle_loss",
    "gan_discriminator_loss",
    "cycle_consistency_loss",
    "rmse_loss",
}

#: Public functions with no catalogue of cases, and no reduction by their nature.
NOT_CATALOGUED = {
    "diou_nms": "returns the indices of the kept boxes",
    "mine_triplets": "returns index triplets",
    "unet_weight_map": "returns one weight per pixel",
}


def _cases(name):
    for case in CATALOGUE[name].cases:
        inputs, kwargs = case.make(torch.Generator().manual_seed(0), torch.float64)
        kwargs = {key: value for key, value in kwargs.items() if key != "reduction"}
        yield case.name, inputs, kwargs


def _with_grad(name, inputs):
    """Fresh inputs; the catalogue's differentiated ones require a gradient."""
    fresh, leaves = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor):
            x = x.detach().clone()
            if i in CATALOGUE[name].grad_inputs and x.is_floating_point():
                x.requires_grad_(True)
                leaves.append(x)
        fresh.append(x)
    return fresh, leaves


def reduction_violations(fn, name) -> list[str]:
    """Where ``fn`` breaks the reduction rule on the catalogue cases of ``name``."""
    parameter = inspect.signature(fn).parameters.get("reduction")
    found = []
    if parameter is None:
        for case, inputs, kwargs in _cases(name):
            out = fn(*inputs, **kwargs)
            if out.dim() == 0:
                found.append(
                    f"{name} / {case}: returns a scalar, a reduction of per-sample values, "
                    "without reduction= to choose it"
                )
        return found
    if parameter.default != "mean":
        found.append(f"{name}: reduction defaults to {parameter.default!r}, not 'mean'")
    for case, inputs, kwargs in _cases(name):
        inputs, leaves = _with_grad(name, inputs)
        out = {mode: fn(*inputs, **kwargs, reduction=mode) for mode in ("none", "mean", "sum")}
        if out["mean"].dim() or out["sum"].dim():
            found.append(f"{name} / {case}: 'mean' and 'sum' must be scalars")
            continue
        if not all(torch.isfinite(value).all() for value in out.values()):
            found.append(f"{name} / {case}: a non-finite value")
        none = out["none"].detach()
        if name not in SUM_IS_NOT_SUM_OF_NONE and not torch.allclose(
            out["sum"].detach(), none.sum(), rtol=1e-10, atol=1e-12
        ):
            found.append(f"{name} / {case}: 'sum' is not the sum of 'none'")
        if none.numel() == 0:
            if not torch.equal(out["mean"].detach(), torch.zeros_like(out["mean"])):
                found.append(f"{name} / {case}: a 'mean' over nothing must be 0")
            if out["mean"].requires_grad and leaves:
                grads = torch.autograd.grad(out["mean"], leaves, allow_unused=True)
                if any(g is not None and bool(g.ne(0).any()) for g in grads):
                    found.append(f"{name} / {case}: a 'mean' over nothing needs a zero gradient")
        elif name not in OWN_MEAN and not torch.allclose(
            out["mean"].detach(), none.mean(), rtol=1e-10, atol=1e-12
        ):
            found.append(f"{name} / {case}: 'mean' is not the mean of 'none'")
    _, inputs, kwargs = next(_cases(name))
    try:
        fn(*inputs, **kwargs, reduction="average")
        found.append(f"{name}: reduction='average' is accepted")
    except ValueError as error:
        if "reduction" not in str(error):
            found.append(f"{name}: the error for a bad reduction does not name it: {error}")
    except Exception as error:
        found.append(f"{name}: a bad reduction raises {type(error).__name__}, not ValueError")
    return found


@pytest.mark.parametrize("name", REDUCED)
def test_reduction_is_shared(name):
    assert reduction_violations(getattr(cvloss_ref, name), name) == []


@pytest.mark.parametrize("name", UNREDUCED)
def test_a_function_without_reduction_returns_unreduced_values(name):
    assert reduction_violations(getattr(cvloss_ref, name), name) == []


def test_unreduced_functions_are_those_the_package_docstring_names():
    not_reducing = set(UNREDUCED) | set(NOT_CATALOGUED)
    for name in not_reducing:
        assert "reduction" not in _parameters(getattr(cvloss_ref, name)), name
        assert f"``{name}``" in cvloss_ref.__doc__, f"the package docstring does not name {name}"
    functions = {
        name
        for name in cvloss_ref.__all__
        if inspect.isfunction(getattr(cvloss_ref, name)) and name not in NOT_DATA
    }
    assert functions - set(CATALOGUE) == set(NOT_CATALOGUED)
    # Every other public function is a loss, with reduction=.
    assert functions - not_reducing == set(REDUCED)


def test_own_denominators_are_named_in_the_package_docstring():
    assert OWN_MEAN <= set(REDUCED) and SUM_IS_NOT_SUM_OF_NONE <= OWN_MEAN
    for name in OWN_MEAN:
        assert f"``{name}``" in cvloss_ref.__doc__, name


def test_the_reduction_rule_catches_a_loss_without_reduction():
    def cycle_consistency_loss(real_a, rec_a, real_b, rec_b, weight=10.0):
        """The loss before issue #19 item 5: always the scalar of its formula."""
        return weight * ((rec_a - real_a).abs().mean() + (rec_b - real_b).abs().mean())

    assert reduction_violations(cycle_consistency_loss, "cycle_consistency_loss")

    def mse_loss(input, target, reduction="sum"):  # another default
        return cvloss_ref.mse_loss(input, target, reduction=reduction)

    assert reduction_violations(mse_loss, "mse_loss")

    def l1_loss(input, target, reduction="mean"):  # NaN for an empty mean
        loss = (input - target).abs()
        return loss if reduction == "none" else getattr(loss, reduction)()

    assert any("over nothing" in v for v in reduction_violations(l1_loss, "l1_loss"))
