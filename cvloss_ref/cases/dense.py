"""Catalogue cases for the dense-prediction losses (book part IV).

Inputs are small segmentation maps: logits ``(N, C, H, W)`` with class indices
``(N, H, W)`` or binary masks.  The edge cases are those where segmentation
code breaks: ignored pixels and images where every pixel is ignored or weighs 0
(the weighted mean is 0/0), classes absent from the target and empty masks
(Dice's 0/0, which ``smooth`` prevents), probabilities of exactly 0, volumes
``(N, C, D, H, W)``, and perfect predictions.

:func:`topology_loss` takes a feature extractor: the cases use the device-agnostic
callable :class:`cvloss_ref.cases.synthesis.TinyExtractor` on single-channel masks.
:func:`unet_weight_map` is preprocessing, not a loss, and is tested directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register
from .synthesis import TinyExtractor

# ----------------------------------------------------------------------------- inputs


def _segmentation(
    shape=(2, 3, 4, 4),
    weights="random",
    ignore=0.0,
    class_weight=False,
    **kwargs,
):
    """Logits, class indices, a pixel weight map (``"random"`` in [0.5, 3], ``"ones"``
    or ``"zeros"``); a fraction ``ignore`` of pixels set to -100."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        num_classes = shape[1]
        spatial = (shape[0], *shape[2:])
        logits = 2 * torch.randn(shape, generator=generator, dtype=torch.float64)
        target = torch.randint(0, num_classes, spatial, generator=generator)
        if ignore:
            drop = torch.rand(spatial, generator=generator) < ignore
            target = torch.where(drop, torch.full_like(target, -100), target)
        if weights == "random":
            pixel_weight = 0.5 + 2.5 * torch.rand(spatial, generator=generator, dtype=torch.float64)
        elif weights == "ones":
            pixel_weight = torch.ones(spatial, dtype=torch.float64)
        else:
            pixel_weight = torch.zeros(spatial, dtype=torch.float64)
        extra = dict(kwargs)
        if class_weight:
            extra["weight"] = (0.5 + torch.rand(num_classes, generator=generator)).to(dtype)
        return (logits.to(dtype), target, pixel_weight.to(dtype)), extra

    return make


def _multiclass(shape=(2, 3, 4, 4), absent=None, probs=False, **kwargs):
    """Logits (or softmax probabilities) and class indices; ``absent`` never occurs."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        num_classes = shape[1]
        logits = 2 * torch.randn(shape, generator=generator, dtype=torch.float64)
        spatial = (shape[0], *shape[2:])
        target = torch.randint(0, num_classes, spatial, generator=generator)
        if absent is not None:
            target = torch.where(target == absent, (target + 1) % num_classes, target)
        scores = torch.softmax(logits, dim=1) if probs else logits
        return (scores.to(dtype), target), dict(kwargs)

    return make


def _binary(shape=(2, 1, 4, 4), target_shape=None, empty=False, zero_probs=False, **kwargs):
    """Logits (or probabilities of 0) and a binary float mask (empty: all 0)."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        if zero_probs:
            scores = torch.zeros(shape, dtype=torch.float64)
        else:
            scores = 2 * torch.randn(shape, generator=generator, dtype=torch.float64)
        mask_shape = target_shape or shape
        if empty:
            mask = torch.zeros(mask_shape, dtype=torch.float64)
        else:
            mask = (torch.rand(mask_shape, generator=generator) < 0.4).double()
        return (scores.to(dtype), mask.to(dtype)), dict(kwargs)

    return make


def _masks(shape=(2, 1, 6, 6), perfect=False, empty=False, **kwargs):
    """Predicted probabilities, a ground-truth mask (a line and blobs), the extractor."""
    layers = kwargs.pop("layers")

    def make(generator: torch.Generator, dtype: torch.dtype):
        target = (torch.rand(shape, generator=generator) < 0.3).double()
        if empty:
            target = torch.zeros(shape, dtype=torch.float64)
        pred = target.clone() if perfect else torch.rand(shape, generator=generator).double()
        extractor = TinyExtractor(1)
        return (pred.to(dtype), target.to(dtype), extractor, layers), dict(kwargs)

    return make


# ----------------------------------------------------------------------------- mistakes


def _student_reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean() if values.numel() else 0.0 * values.sum()
    if reduction == "sum":
        return values.sum()
    return values


def _pixel_ce(logits, target, weight, ignore_index):
    return F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction="none"
    )


def _safe_ratio(total, norm):
    return torch.where(norm != 0, total / torch.where(norm != 0, norm, 1), 0.0)


def _wce_mean_over_pixels(
    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"
):
    loss = pixel_weight * _pixel_ce(logits, target, weight, ignore_index)
    return _student_reduce(loss, reduction)


def _wce_counts_ignored(
    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"
):
    loss = pixel_weight * _pixel_ce(logits, target, weight, ignore_index)
    if reduction != "mean":
        return _student_reduce(loss, reduction)
    return _safe_ratio(loss.sum(), pixel_weight.sum())


def _wce_class_weight_in_norm(
    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"
):
    loss = pixel_weight * _pixel_ce(logits, target, weight, ignore_index)
    if reduction != "mean":
        return _student_reduce(loss, reduction)
    kept = target != ignore_index
    class_weight = torch.ones_like(pixel_weight) if weight is None else weight[target.clamp(min=0)]
    return _safe_ratio(loss.sum(), (pixel_weight * class_weight * kept).sum())


def _wce_weights_on_logits(
    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"
):
    loss = _pixel_ce(logits * pixel_weight.unsqueeze(1), target, weight, ignore_index)
    if reduction != "mean":
        return _student_reduce(loss, reduction)
    return _safe_ratio(loss.sum(), (target != ignore_index).sum())


def _wce_unweighted_mean(
    logits, target, pixel_weight, weight=None, ignore_index=-100, reduction="mean"
):
    loss = pixel_weight * _pixel_ce(logits, target, weight, ignore_index)
    if reduction != "mean":
        return _student_reduce(loss, reduction)
    plain = _pixel_ce(logits, target, weight, ignore_index)
    return _safe_ratio(plain.sum(), (target != ignore_index).sum())


def _dice_parts(scores, target, from_logits):
    if target.is_floating_point():
        truth = target if target.shape == scores.shape else target.unsqueeze(1)
        probs = torch.sigmoid(scores) if from_logits else scores
    else:
        truth = F.one_hot(target, scores.shape[1]).movedim(-1, 1).to(scores.dtype)
        probs = torch.softmax(scores, dim=1) if from_logits else scores
    return probs, truth


def _spatial_sum(x):
    return x.flatten(2).sum(2)


def _dice_no_smooth(scores, target, smooth=1.0, from_logits=True, reduction="mean"):
    probs, truth = _dice_parts(scores, target, from_logits)
    dice = 2 * _spatial_sum(probs * truth) / (_spatial_sum(probs) + _spatial_sum(truth))
    return _student_reduce(1 - dice, reduction)


def _dice_hard(scores, target, smooth=1.0, from_logits=True, reduction="mean"):
    probs, truth = _dice_parts(scores, target, from_logits)
    if target.is_floating_point():
        hard = (probs > 0.5).to(probs.dtype)
    else:
        hard = F.one_hot(probs.argmax(1), probs.shape[1]).movedim(-1, 1).to(probs.dtype)
    inter = _spatial_sum(hard * truth)
    dice = (2 * inter + smooth) / (_spatial_sum(hard) + _spatial_sum(truth) + smooth)
    return _student_reduce(1 - dice, reduction)


def _dice_squared_denominator(scores, target, smooth=1.0, from_logits=True, reduction="mean"):
    probs, truth = _dice_parts(scores, target, from_logits)
    inter = _spatial_sum(probs * truth)
    dice = (2 * inter + smooth) / (_spatial_sum(probs**2) + _spatial_sum(truth**2) + smooth)
    return _student_reduce(1 - dice, reduction)


def _dice_smooth_below_only(scores, target, smooth=1.0, from_logits=True, reduction="mean"):
    probs, truth = _dice_parts(scores, target, from_logits)
    inter = _spatial_sum(probs * truth)
    dice = 2 * inter / (_spatial_sum(probs) + _spatial_sum(truth) + smooth)
    return _student_reduce(1 - dice, reduction)


def _dice_over_batch(scores, target, smooth=1.0, from_logits=True, reduction="mean"):
    probs, truth = _dice_parts(scores, target, from_logits)
    inter = (probs * truth).transpose(0, 1).flatten(1).sum(1)
    total = probs.transpose(0, 1).flatten(1).sum(1) + truth.transpose(0, 1).flatten(1).sum(1)
    loss = 1 - (2 * inter + smooth) / (total + smooth)
    if reduction == "none":
        return loss.unsqueeze(0).expand(scores.shape[0], -1)
    return _student_reduce(loss, reduction)


def _dice_no_activation(scores, target, smooth=1.0, from_logits=True, reduction="mean"):
    _, truth = _dice_parts(scores, target, from_logits)
    inter = _spatial_sum(scores * truth)
    dice = (2 * inter + smooth) / (_spatial_sum(scores) + _spatial_sum(truth) + smooth)
    return _student_reduce(1 - dice, reduction)


def _masks_3(x):
    return x if x.dim() == 4 else x.unsqueeze(1)


def _topology_terms(pred, target, feature_extractor, layers, term):
    layers = [layers] if isinstance(layers, str) else list(layers)
    pred_features = feature_extractor(_masks_3(pred))
    with torch.no_grad():
        target_features = feature_extractor(_masks_3(target))
    total = 0.0
    for name in layers:
        total = total + term(pred_features[name] - target_features[name])
    return total, len(layers)


def _topology_pixels(pred, target, feature_extractor, layers, reduction="mean"):
    d = _masks_3(pred) - _masks_3(target)
    return _student_reduce((d * d).flatten(1).mean(1), reduction)


def _topology_sum_of_squares(pred, target, feature_extractor, layers, reduction="mean"):
    loss, _ = _topology_terms(
        pred, target, feature_extractor, layers, lambda d: (d * d).flatten(1).sum(1)
    )
    return _student_reduce(loss, reduction)


def _topology_mean_over_layers(pred, target, feature_extractor, layers, reduction="mean"):
    loss, count = _topology_terms(
        pred, target, feature_extractor, layers, lambda d: (d * d).flatten(1).mean(1)
    )
    return _student_reduce(loss / count, reduction)


def _topology_last_layer_only(pred, target, feature_extractor, layers, reduction="mean"):
    last = layers if isinstance(layers, str) else layers[-1]
    loss, _ = _topology_terms(
        pred, target, feature_extractor, [last], lambda d: (d * d).flatten(1).mean(1)
    )
    return _student_reduce(loss, reduction)


def _topology_l1(pred, target, feature_extractor, layers, reduction="mean"):
    loss, _ = _topology_terms(
        pred, target, feature_extractor, layers, lambda d: d.abs().flatten(1).mean(1)
    )
    return _student_reduce(loss, reduction)


# ----------------------------------------------------------------------------- specs

register(
    LossSpec(
        name="weighted_pixel_cross_entropy",
        cases=(
            Case("random (2, 3, 4, 4), weights in [0.5, 3]", _segmentation()),
            Case(
                "pixel_weight all 1 (plain cross entropy)",
                _segmentation(weights="ones"),
                note="with unit pixel weights the loss is the pixel-wise cross entropy",
            ),
            Case(
                "ignored pixels (-100)",
                _segmentation(ignore=0.3),
                note="ignored pixels count neither in the loss nor in the sum of weights",
            ),
            Case(
                "class weights",
                _segmentation(class_weight=True, ignore=0.2),
                note="class weights scale each pixel's loss; the mean divides by the sum of "
                "pixel weights",
            ),
            Case("reduction='none'", _segmentation((2, 2, 3, 5), reduction="none")),
            Case("reduction='sum'", _segmentation(reduction="sum", ignore=0.2)),
            Case(
                "every pixel ignored",
                _segmentation(ignore=1.0),
                note="no pixel left: 0 with a zero gradient, not 0/0",
            ),
            Case(
                "every pixel weight 0",
                _segmentation(weights="zeros"),
                note="a total weight of 0: 0 with a zero gradient, not 0/0",
            ),
            Case("logits (N, C) = (6, 4)", _segmentation((6, 4))),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _wce_mean_over_pixels,
                "reduction='mean' divides the weighted sum by the sum of the pixel weights "
                "(of the pixels not ignored), not by the number of pixels.",
            ),
            Mistake(
                _wce_counts_ignored,
                "leave ignored pixels out of the denominator: sum the pixel weights only "
                "where target != ignore_index.",
            ),
            Mistake(
                _wce_class_weight_in_norm,
                "the denominator is the sum of the pixel weights of the kept pixels; the class "
                "weights scale the loss but are not in the denominator here.",
            ),
            Mistake(
                _wce_weights_on_logits,
                "multiply each pixel's cross entropy by its weight; scaling the logits "
                "changes the softmax instead.",
            ),
            Mistake(
                _wce_unweighted_mean,
                "reduction='mean' must use the pixel weights too: sum(w * loss) / sum(w).",
            ),
        ),
    )
)

register(
    LossSpec(
        name="dice_loss",
        cases=(
            Case("multi-class logits (2, 3, 4, 4)", _multiclass()),
            Case("binary logits (2, 1, 4, 4), float mask", _binary()),
            Case(
                "binary logits (2, 1, 5, 5), mask (2, 5, 5)",
                _binary((2, 1, 5, 5), target_shape=(2, 5, 5)),
                note="a mask without the channel dim goes with (N, 1, ...) scores",
            ),
            Case(
                "multi-label logits (2, 3, 4, 4), float masks",
                _binary((2, 3, 4, 4)),
                note="floating masks of the shape of the scores: a sigmoid per channel",
            ),
            Case(
                "probabilities (from_logits=False)",
                _multiclass(probs=True, from_logits=False),
                note="from_logits=False: the input is already probabilities",
            ),
            Case(
                "a class absent from the target",
                _multiclass((2, 3, 4, 4), absent=2),
                note="every (sample, class) pair is a Dice term, absent classes included",
            ),
            Case(
                "empty masks",
                _binary(empty=True),
                note="an empty target gives a finite loss thanks to smooth",
            ),
            Case(
                "nothing predicted, nothing to find",
                _binary(empty=True, zero_probs=True, from_logits=False),
                note="p = 0 and g = 0 everywhere: (0 + s) / (0 + 0 + s) = 1, loss 0, not 0/0",
            ),
            Case("smooth=0", _multiclass(smooth=0.0)),
            Case("smooth=10", _binary(smooth=10.0)),
            Case(
                "reduction='none' (N, C)",
                _multiclass((3, 2, 3, 3), reduction="none"),
                note="'none' gives one loss per sample and class, shape (N, C)",
            ),
            Case("reduction='sum'", _multiclass(reduction="sum")),
            Case("volumes (1, 2, 3, 3, 3)", _multiclass((1, 2, 3, 3, 3))),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _dice_no_smooth,
                "add smooth to the numerator and to the denominator: "
                "(2 * sum(p * g) + smooth) / (sum(p) + sum(g) + smooth); without it an empty "
                "mask with p = 0 gives 0/0 = NaN.",
            ),
            Mistake(
                _dice_hard,
                "use the soft probabilities (softmax or sigmoid), not a hard argmax or "
                "threshold: a hard mask has no gradient.",
            ),
            Mistake(
                _dice_squared_denominator,
                "the denominator is sum(p) + sum(g) + smooth; V-Net's sum(p ** 2) + "
                "sum(g ** 2) is a different variant.",
            ),
            Mistake(
                _dice_smooth_below_only,
                "add smooth to the numerator as well, so that two empty masks score a "
                "Dice of 1 (loss 0).",
            ),
            Mistake(
                _dice_over_batch,
                "compute one Dice per sample and class (sum over the spatial dims only), "
                "not one per class over the whole batch.",
            ),
            Mistake(
                _dice_no_activation,
                "with from_logits=True turn the logits into probabilities first (softmax over "
                "dim 1 for class indices, sigmoid for masks).",
            ),
        ),
    )
)

register(
    LossSpec(
        name="topology_loss",
        cases=(
            Case("random masks (2, 1, 6, 6), layer 'act1'", _masks(layers=["act1"])),
            Case("two layers", _masks(layers=["act1", "act2"])),
            Case(
                "masks (N, H, W) without channel dim",
                _masks((2, 6, 6), layers=["conv1", "act2"]),
                note="(N, H, W) masks get a channel dim",
            ),
            Case(
                "reduction='none' (one value per sample)",
                _masks((3, 1, 4, 4), layers=["act1", "conv2"], reduction="none"),
                note="'none' gives one loss per sample, shape (N,)",
            ),
            Case("reduction='sum'", _masks(layers=["act2"], reduction="sum")),
            Case("layers given as one name (str)", _masks(layers="conv2")),
            Case(
                "perfect prediction (loss 0)",
                _masks(perfect=True, layers=["act1", "act2"]),
                note="a prediction equal to the mask costs 0, with a zero gradient",
            ),
            Case("empty ground truth", _masks(empty=True, layers=["act1", "act2"])),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _topology_pixels,
                "compare the masks' features feature_extractor(mask)[layer], not their pixels.",
            ),
            Mistake(
                _topology_sum_of_squares,
                "average each layer's squared differences over its elements (an MSE per "
                "layer), do not sum them.",
            ),
            Mistake(
                _topology_mean_over_layers,
                "sum the layers' MSEs; do not average over the layers.",
            ),
            Mistake(
                _topology_last_layer_only,
                "add a term for every layer in layers, not only the last one.",
            ),
            Mistake(
                _topology_l1,
                "square the feature differences (an MSE per layer), not their absolute value.",
            ),
        ),
    )
)
