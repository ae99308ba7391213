"""Tests of the dense-prediction losses (``cvloss_ref/dense.py``).

References: ``F.cross_entropy``, ``scipy.ndimage.distance_transform_edt`` and
brute-force loops written from the papers in this file (U-Net's weighted cross
entropy and weight map, soft Dice per sample and class, Mosinska et al.'s
topology loss).  Values and gradients are compared in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn
from torch.autograd import gradcheck

import cvloss_ref.dense as dense
from cvloss_ref.dense import dice_loss, topology_loss, unet_weight_map, weighted_pixel_cross_entropy
from cvloss_ref.synthesis import FeatureExtractor, perceptual_loss
from tests._tolerances import TOLERANCES

F64 = torch.float64
REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]
F32_TOL = TOLERANCES[torch.float32]  # unet_weight_map computes in float32


def _grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


# ----------------------------------------------------------------------------- weighted CE


def _segmentation(generator, shape=(2, 3, 4, 5), ignore=0.0, dtype=F64):
    logits = 2 * torch.randn(shape, generator=generator, dtype=F64)
    spatial = (shape[0], *shape[2:])
    target = torch.randint(0, shape[1], spatial, generator=generator)
    if ignore:
        target[torch.rand(spatial, generator=generator) < ignore] = -100
    pixel_weight = 0.5 + 2.5 * torch.rand(spatial, generator=generator, dtype=F64)
    return logits.to(dtype), target, pixel_weight.to(dtype)


def _brute_weighted_ce(logits, target, pixel_weight, weight, reduction):
    """U-Net's weighted energy, pixel by pixel, normalised by the kept pixels' weights."""
    c = logits.shape[1]
    flat_logits = logits.movedim(1, -1).reshape(-1, c).tolist()
    losses, kept_weights = [], []
    for scores, label, w in zip(flat_logits, target.flatten().tolist(), pixel_weight.flatten()):
        if label == -100:
            losses.append(0.0)
            continue
        log_z = math.log(sum(math.exp(s) for s in scores))
        class_weight = 1.0 if weight is None else float(weight[label])
        losses.append(float(w) * class_weight * (log_z - scores[label]))
        kept_weights.append(float(w))
    if reduction == "none":
        return torch.tensor(losses, dtype=F64).reshape(target.shape)
    if reduction == "sum":
        return torch.tensor(sum(losses), dtype=F64)
    total = sum(kept_weights)
    return torch.tensor(sum(losses) / total if total else 0.0, dtype=F64)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_weighted_pixel_cross_entropy_same_as_brute_force_definition(
    generator, weighted, reduction
):
    logits, target, pixel_weight = _segmentation(generator, ignore=0.25)
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=F64) if weighted else None
    out = weighted_pixel_cross_entropy(logits, target, pixel_weight, weight, reduction=reduction)
    expected = _brute_weighted_ce(logits, target, pixel_weight, weight, reduction)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_pixel_cross_entropy_with_unit_weights_same_as_f_cross_entropy(
    generator, reduction
):
    logits, target, _ = _segmentation(generator, ignore=0.25)
    ones = torch.ones(target.shape, dtype=F64)
    ours = _grad(weighted_pixel_cross_entropy, logits, target, ones, reduction=reduction)
    theirs = _grad(F.cross_entropy, logits, target, reduction=reduction)
    torch.testing.assert_close(ours, theirs)


def test_weighted_pixel_cross_entropy_gradcheck(generator):
    logits, target, pixel_weight = _segmentation(generator, shape=(1, 3, 2, 3), ignore=0.2)
    logits.requires_grad_(True)
    assert gradcheck(lambda x: weighted_pixel_cross_entropy(x, target, pixel_weight), (logits,))


@pytest.mark.parametrize("case", ["all ignored", "all weights zero", "empty batch"])
def test_weighted_pixel_cross_entropy_zero_denominator_is_zero_with_zero_gradient(generator, case):
    logits, target, pixel_weight = _segmentation(generator)
    if case == "all ignored":
        target = torch.full_like(target, -100)
        pixel_weight[0, 0, 0] = math.inf  # ignored pixels count for nothing
    elif case == "all weights zero":
        pixel_weight = torch.zeros_like(pixel_weight)
    else:
        logits, target, pixel_weight = logits[:0], target[:0], pixel_weight[:0]
    value, grad = _grad(weighted_pixel_cross_entropy, logits, target, pixel_weight)
    assert value == 0 and torch.all(grad == 0)


def test_weighted_pixel_cross_entropy_with_unet_weight_map(generator):
    mask = torch.zeros(1, 8, 8, dtype=torch.long)
    mask[0, 1:4, 1:4], mask[0, 5:7, 1:7] = 1, 2
    weights = unet_weight_map(mask, w0=10.0, sigma=2.0)
    logits = torch.randn(1, 2, 8, 8, generator=generator, dtype=F64)
    target = (mask > 0).long()
    out = weighted_pixel_cross_entropy(logits, target, weights.double())
    expected = _brute_weighted_ce(logits, target, weights.double(), None, "mean")
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_weighted_pixel_cross_entropy_half_precision_returns_input_dtype(generator, dtype):
    logits, target, pixel_weight = _segmentation(generator, dtype=torch.float32)
    out = weighted_pixel_cross_entropy(logits.to(dtype), target, pixel_weight.to(dtype))
    assert out.dtype == dtype
    expected = weighted_pixel_cross_entropy(
        logits.to(dtype).float(), target, pixel_weight.to(dtype).float()
    )
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


def test_weighted_pixel_cross_entropy_meta_and_device(generator, device):
    meta = torch.rand(2, 3, 4, 4, device="meta", requires_grad=True)
    out = weighted_pixel_cross_entropy(
        meta,
        torch.zeros(2, 4, 4, dtype=torch.long, device="meta"),
        torch.rand(2, 4, 4, device="meta"),
    )
    assert out.device.type == "meta" and out.shape == ()
    logits, target, pixel_weight = _segmentation(generator, ignore=0.2)
    expected = _grad(weighted_pixel_cross_entropy, logits, target, pixel_weight)
    received = _grad(
        weighted_pixel_cross_entropy, logits.to(device), target.to(device), pixel_weight.to(device)
    )
    torch.testing.assert_close([r.cpu() for r in received], list(expected))


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(pixel_weight=torch.ones(2, 4)), ValueError, r"pixel_weight must have the same shape"),
        (dict(target=torch.zeros(2, 4, 4)), TypeError, r"target must be an integer tensor"),
        (dict(target=torch.zeros(2, 4, dtype=torch.long)), ValueError, r"class indices of shape"),
        (dict(logits=torch.rand(3)), ValueError, r"logits must have shape \(N, C, d1, \.\.\.\)"),
        (dict(pixel_weight=torch.ones(2, 4, 4, dtype=torch.long)), TypeError, r"pixel_weight"),
        (dict(reduction="mean_over_pixels"), ValueError, r"reduction must be one of"),
        (
            dict(pixel_weight=-torch.ones(2, 4, 4), validate=True),
            ValueError,
            r"pixel_weight must be non-negative",
        ),
        (
            dict(target=torch.full((2, 4, 4), 5), validate=True),
            ValueError,
            r"target must hold class indices in \[0, 2\]",
        ),
    ],
)
def test_weighted_pixel_cross_entropy_invalid_input(change, error, match):
    args = dict(
        logits=torch.rand(2, 3, 4, 4),
        target=torch.zeros(2, 4, 4, dtype=torch.long),
        pixel_weight=torch.ones(2, 4, 4),
    )
    args.update(change)
    with pytest.raises(error, match=match):
        weighted_pixel_cross_entropy(**args)


# ----------------------------------------------------------------------------- unet_weight_map


def _brute_unet_weights(mask, w0, sigma, class_weights=None):
    """Ronneberger et al.'s w(x), pixel by pixel, with distances by loops over
    every pixel of every instance."""
    height, width = mask.shape
    labels = mask.tolist()
    pixels = {}
    for r in range(height):
        for c in range(width):
            if labels[r][c] > 0:
                pixels.setdefault(labels[r][c], []).append((r, c))
    n = height * width
    n_fg = sum(len(p) for p in pixels.values())
    counts = {"fg": n_fg, "bg": n - n_fg}
    present = sum(1 for v in counts.values() if v)
    if class_weights is None:
        w_bg = n / (present * counts["bg"]) if counts["bg"] else 0.0
        w_fg = n / (present * counts["fg"]) if counts["fg"] else 0.0
    else:
        w_bg, w_fg = class_weights
    out = torch.zeros(height, width, dtype=F64)
    for r in range(height):
        for c in range(width):
            if labels[r][c] > 0:
                out[r, c] = w_fg
                continue
            out[r, c] = w_bg
            if len(pixels) < 2:
                continue
            distances = sorted(
                min(math.hypot(r - r2, c - c2) for r2, c2 in instance)
                for instance in pixels.values()
            )
            d1, d2 = distances[0], distances[1]
            out[r, c] += w0 * math.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return out


def _instances(generator, height, width, count, size=3):
    mask = torch.zeros(height, width, dtype=torch.long)
    for k in range(1, count + 1):
        r = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        c = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        mask[r : r + size, c : c + size] = k
    return mask


@pytest.mark.parametrize(
    ("height", "width", "count", "w0", "sigma"),
    [(7, 9, 3, 10.0, 5.0), (8, 8, 2, 10.0, 2.0), (6, 10, 4, 3.0, 1.5), (9, 7, 1, 10.0, 5.0)],
)
def test_unet_weight_map_same_as_brute_force_definition(generator, height, width, count, w0, sigma):
    mask = _instances(generator, height, width, count)
    out = unet_weight_map(mask, w0=w0, sigma=sigma)
    assert out.dtype == torch.float32 and out.shape == mask.shape
    torch.testing.assert_close(out.double(), _brute_unet_weights(mask, w0, sigma), **F32_TOL)


def test_unet_weight_map_with_class_weights_same_as_brute_force(generator):
    mask = _instances(generator, 8, 9, 3)
    out = unet_weight_map(mask, class_weights=(0.5, 2.0), sigma=3.0)
    expected = _brute_unet_weights(mask, 10.0, 3.0, class_weights=(0.5, 2.0))
    torch.testing.assert_close(out.double(), expected, **F32_TOL)


def test_unet_weight_map_distances_same_as_scipy(generator, monkeypatch):
    mask = _instances(generator, 24, 20, 6, size=4)
    monkeypatch.setattr(dense, "_DISTANCE_BLOCK", 50)  # exercise the blocked passes
    for k in mask.unique()[1:].tolist():
        ours = dense._distance_to(mask == k)
        theirs = torch.from_numpy(ndimage.distance_transform_edt((mask != k).numpy()))
        torch.testing.assert_close(ours.double(), theirs, **F32_TOL)


def test_unet_weight_map_border_term_is_largest_between_touching_instances():
    mask = torch.zeros(5, 9, dtype=torch.long)
    mask[:, :4], mask[:, 5:] = 1, 2  # a one-pixel gap in column 4
    out = unet_weight_map(mask, w0=10.0, sigma=5.0, class_weights=(1.0, 1.0))
    # d1 = d2 = 1 in the gap: 1 + 10 exp(-4 / 50)
    torch.testing.assert_close(out[:, 4], torch.full((5,), 1 + 10 * math.exp(-4 / 50)))
    assert torch.all(out[:, :4] == 1) and torch.all(out[:, 5:] == 1)


def test_unet_weight_map_class_balance_averages_to_one(generator):
    mask = _instances(generator, 10, 10, 1, size=4)
    out = unet_weight_map(mask, w0=0.0)
    torch.testing.assert_close(out.mean(), torch.tensor(1.0))
    foreground = mask > 0
    torch.testing.assert_close(out[foreground].sum(), out[~foreground].sum())


def test_unet_weight_map_of_background_only_is_all_ones():
    assert torch.equal(unet_weight_map(torch.zeros(3, 4, dtype=torch.long)), torch.ones(3, 4))


def test_unet_weight_map_batch_and_label_values(generator):
    masks = torch.stack([_instances(generator, 6, 7, k) for k in (1, 2, 3)])
    out = unet_weight_map(masks, sigma=2.0)
    assert out.shape == (3, 6, 7)
    for i in range(3):
        torch.testing.assert_close(out[i], unet_weight_map(masks[i], sigma=2.0))
    relabelled = torch.where(masks > 0, masks * 7 + 100, masks).int()  # any positive ids
    torch.testing.assert_close(unet_weight_map(relabelled, sigma=2.0), out)


def test_unet_weight_map_on_device(generator, device):
    mask = _instances(generator, 8, 8, 3)
    out = unet_weight_map(mask.to(device))
    assert out.device.type == device.type
    torch.testing.assert_close(out.cpu(), unet_weight_map(mask))


@pytest.mark.parametrize(
    ("mask", "kwargs", "error", "match"),
    [
        (torch.zeros(4, 4), {}, TypeError, r"mask must be an integer tensor of instance labels"),
        (torch.zeros(4, 4, dtype=torch.bool), {}, TypeError, r"got dtype torch.bool"),
        (torch.zeros(4, dtype=torch.long), {}, ValueError, r"mask must have shape \(H, W\)"),
        (-torch.ones(4, 4, dtype=torch.long), {}, ValueError, r"labels >= 0.*minimum of -1"),
        (torch.zeros(4, 4, dtype=torch.long), {"sigma": 0.0}, ValueError, r"sigma must be > 0"),
        (torch.zeros(4, 4, dtype=torch.long), {"w0": -1.0}, ValueError, r"w0 must be >= 0"),
        (
            torch.zeros(4, 4, dtype=torch.long),
            {"class_weights": (1.0,)},
            TypeError,
            r"class_weights must be a pair",
        ),
        (
            torch.zeros(4, 4, dtype=torch.long),
            {"class_weights": (1.0, -2.0)},
            ValueError,
            r"class_weights\[1\] must be >= 0",
        ),
    ],
)
def test_unet_weight_map_invalid_input(mask, kwargs, error, match):
    with pytest.raises(error, match=match):
        unet_weight_map(mask, **kwargs)


# ----------------------------------------------------------------------------- dice_loss


def _brute_dice(probs, truth, smooth, reduction):
    """1 - (2 sum pg + s) / (sum p + sum g + s) for each (sample, class), by loops."""
    n, c = probs.shape[:2]
    out = torch.zeros(n, c, dtype=F64)
    for i in range(n):
        for k in range(c):
            p, g = probs[i, k].flatten().tolist(), truth[i, k].flatten().tolist()
            inter = sum(a * b for a, b in zip(p, g))
            out[i, k] = 1 - (2 * inter + smooth) / (sum(p) + sum(g) + smooth)
    if reduction == "none":
        return out
    return out.mean() if reduction == "mean" else out.sum()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_dice_loss_multiclass_same_as_brute_force_definition(generator, smooth, reduction):
    logits = torch.randn(2, 3, 4, 5, generator=generator, dtype=F64)
    target = torch.randint(0, 3, (2, 4, 5), generator=generator)
    probs = torch.softmax(logits, 1)
    truth = F.one_hot(target, 3).movedim(-1, 1).double()
    out = dice_loss(logits, target, smooth=smooth, reduction=reduction)
    torch.testing.assert_close(out, _brute_dice(probs, truth, smooth, reduction))
    on_probs = dice_loss(probs, target, smooth=smooth, from_logits=False, reduction=reduction)
    torch.testing.assert_close(on_probs, out)


@pytest.mark.parametrize("target_shape", [(2, 1, 4, 4), (2, 4, 4)])
def test_dice_loss_binary_same_as_brute_force_definition(generator, target_shape):
    logits = torch.randn(2, 1, 4, 4, generator=generator, dtype=F64)
    mask = (torch.rand(target_shape, generator=generator) < 0.4).double()
    out = dice_loss(logits, mask, reduction="none")
    assert out.shape == (2, 1)
    expected = _brute_dice(torch.sigmoid(logits), mask.reshape(2, 1, 4, 4), 1.0, "none")
    torch.testing.assert_close(out, expected)


def test_dice_loss_multilabel_is_a_sigmoid_per_channel(generator):
    logits = torch.randn(2, 3, 2, 2, 3, generator=generator, dtype=F64)
    masks = torch.rand(2, 3, 2, 2, 3, generator=generator, dtype=F64)  # soft masks
    out = dice_loss(logits, masks, smooth=0.5, reduction="none")
    torch.testing.assert_close(out, _brute_dice(torch.sigmoid(logits), masks, 0.5, "none"))


def test_dice_loss_of_hard_masks_is_one_minus_f1():
    pred = torch.tensor([[[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]])
    truth = torch.tensor([[[1.0, 1.0, 0.0, 1.0, 0.0, 0.0]]])
    tp, fp, fn = 2, 1, 1
    f1 = 2 * tp / (2 * tp + fp + fn)
    torch.testing.assert_close(
        dice_loss(pred, truth, smooth=0.0, from_logits=False), torch.tensor(1 - f1)
    )


def test_dice_loss_empty_masks_are_finite_thanks_to_smooth(generator):
    logits = torch.randn(2, 1, 4, 4, generator=generator, dtype=F64)
    value, grad = _grad(dice_loss, logits, torch.zeros(2, 1, 4, 4, dtype=F64))
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    # Nothing predicted, nothing to find: a perfect match.  With smooth, predicting
    # anything raises the loss (gradient 1 per term, averaged over N * C = 2 terms);
    # without it the loss is 0/0, taken as 0 with a zero gradient.
    probs = torch.zeros(2, 1, 4, 4, dtype=F64)
    value, grad = _grad(dice_loss, probs, torch.zeros_like(probs), 1.0, False)
    assert value == 0 and torch.all(grad == 0.5)
    value, grad = _grad(dice_loss, probs, torch.zeros_like(probs), 0.0, False)
    assert value == 0 and torch.all(grad == 0)


def test_dice_loss_gradcheck(generator):
    logits = torch.randn(2, 3, 3, 3, generator=generator, dtype=F64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 3), generator=generator)
    assert gradcheck(lambda x: dice_loss(x, target, reduction="none"), (logits,))
    mask = torch.rand(2, 3, 3, generator=generator, dtype=F64)
    assert gradcheck(lambda x: dice_loss(x[:, :1], mask, smooth=0.1), (logits,))


def test_dice_loss_numeric_stability_saturated_logits():
    logits = torch.tensor([[[1e4, -1e4, 1e4]], [[-1e4, -1e4, -1e4]]], requires_grad=True)
    mask = torch.tensor([[[1.0, 0.0, 1.0]], [[0.0, 0.0, 0.0]]])
    out = dice_loss(logits, mask, reduction="none")
    out.sum().backward()
    torch.testing.assert_close(out.detach(), torch.zeros(2, 1))
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_dice_loss_half_precision_returns_input_dtype(generator, dtype):
    logits = torch.randn(2, 3, 8, 8, generator=generator).to(dtype)
    target = torch.randint(0, 3, (2, 8, 8), generator=generator)
    out = dice_loss(logits, target, reduction="none")
    assert out.dtype == dtype
    expected = dice_loss(logits.float(), target, reduction="none")
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


def test_dice_loss_meta_and_device(generator, device):
    meta = dice_loss(
        torch.rand(2, 3, 4, 4, device="meta"), torch.zeros(2, 4, 4, dtype=torch.long, device="meta")
    )
    assert meta.device.type == "meta" and meta.shape == ()
    logits = torch.randn(2, 3, 4, 4, generator=generator, dtype=F64)
    target = torch.randint(0, 3, (2, 4, 4), generator=generator)
    expected = _grad(dice_loss, logits, target)
    received = _grad(dice_loss, logits.to(device), target.to(device))
    torch.testing.assert_close([r.cpu() for r in received], list(expected))


@pytest.mark.parametrize(
    ("scores", "target", "kwargs", "error", "match"),
    [
        (torch.rand(2, 1, 4), torch.zeros(2, 4, dtype=torch.long), {}, ValueError, r"C >= 2"),
        (torch.rand(2, 3, 4), torch.zeros(2, 5, dtype=torch.long), {}, ValueError, r"\(2, 4\)"),
        (torch.rand(2, 3, 4), torch.zeros(2, 4), {}, ValueError, r"target must be a mask"),
        (torch.rand(4), torch.zeros(4), {}, ValueError, r"must have shape \(N, C, d1"),
        (torch.rand(2, 3, 4), torch.zeros(2, 4, dtype=torch.bool), {}, TypeError, r"integer"),
        (torch.rand(2, 1, 4), torch.zeros(2, 1, 4), {"smooth": -1.0}, ValueError, r"smooth"),
        (torch.rand(2, 1, 4), torch.zeros(2, 1, 4), {"from_logits": 1}, TypeError, r"bool"),
        (
            torch.rand(2, 3, 4),
            torch.full((2, 4), 3),
            {"validate": True},
            ValueError,
            r"class indices in \[0, 2\]",
        ),
        (
            torch.full((2, 1, 4), 2.0),
            torch.zeros(2, 1, 4),
            {"validate": True, "from_logits": False},
            ValueError,
            r"logits_or_probs must hold probabilities",
        ),
    ],
)
def test_dice_loss_invalid_input(scores, target, kwargs, error, match):
    with pytest.raises(error, match=match):
        dice_loss(scores, target, **kwargs)


# ----------------------------------------------------------------------------- topology_loss


def _mask_net(in_channels=1):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 3, 3, stride=2, padding=1),
        nn.Tanh(),
    )
    return net.double().requires_grad_(False)


def _masks(generator, shape=(2, 1, 6, 6)):
    target = (torch.rand(shape, generator=generator) < 0.3).double()
    return torch.rand(shape, generator=generator, dtype=F64), target


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_topology_loss_same_as_brute_force_definition(generator, reduction):
    net = _mask_net()
    extractor = FeatureExtractor(net, ["1", "3"])
    pred, target = _masks(generator)
    out = topology_loss(pred, target, extractor, ["1", "3"], reduction=reduction)
    per_sample = []
    with torch.no_grad():
        for i in range(2):
            total = 0.0
            for index in (2, 4):
                a, b = net[:index](pred[i : i + 1]), net[:index](target[i : i + 1])
                total += float(((a - b) ** 2).sum()) / a.numel()
            per_sample.append(total)
    expected = torch.tensor(per_sample, dtype=F64)
    if reduction != "none":
        expected = expected.mean() if reduction == "mean" else expected.sum()
    torch.testing.assert_close(out, expected)


def test_topology_loss_repeats_single_channel_masks_for_an_rgb_extractor(generator):
    extractor = FeatureExtractor(_mask_net(in_channels=3), ["1", "3"])
    pred, target = _masks(generator, (2, 6, 6))
    out = topology_loss(pred, target, extractor, ["1", "3"])
    rgb = pred.unsqueeze(1).repeat(1, 3, 1, 1), target.unsqueeze(1).repeat(1, 3, 1, 1)
    torch.testing.assert_close(out, perceptual_loss(*rgb, extractor, ["1", "3"]))


def test_topology_loss_gives_masks_as_they_are_to_a_plain_callable(generator):
    pred, target = _masks(generator)
    seen = []

    def extractor(x):
        seen.append(x.shape)
        return {"x": x}

    out = topology_loss(pred, target, extractor, "x")
    assert seen == [(2, 1, 6, 6)] * 2
    torch.testing.assert_close(out, ((pred - target) ** 2).mean())


def test_topology_loss_gradcheck_and_no_gradient_to_the_ground_truth(generator):
    extractor = FeatureExtractor(_mask_net(), ["1", "3"])
    pred, target = _masks(generator, (2, 1, 4, 4))
    pred.requires_grad_(True)
    assert gradcheck(lambda p: topology_loss(p, target, extractor, ["1", "3"]), (pred,))
    target.requires_grad_(True)
    topology_loss(pred, target, extractor, ["1"]).backward()
    assert target.grad is None


def test_topology_loss_is_zero_for_a_perfect_prediction(generator):
    extractor = FeatureExtractor(_mask_net(), ["1", "3"])
    _, target = _masks(generator)
    value, grad = _grad(topology_loss, target, target.clone(), extractor, ["1", "3"])
    assert value == 0 and torch.all(grad == 0)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_topology_loss_half_precision_returns_input_dtype(generator, dtype):
    pred, target = _masks(generator)

    def extractor(x):
        return {"x": x, "pooled": F.avg_pool2d(x, 2)}

    out = topology_loss(pred.to(dtype), target.to(dtype), extractor, ["x", "pooled"])
    assert out.dtype == dtype
    expected = topology_loss(pred.to(dtype).float(), target.float(), extractor, ["x", "pooled"])
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


def test_topology_loss_meta_tensors():
    def extractor(x):
        return {"pooled": F.avg_pool2d(x, 2)}

    pred = torch.rand(2, 1, 4, 4, device="meta", requires_grad=True)
    out = topology_loss(pred, torch.rand(2, 1, 4, 4, device="meta"), extractor, "pooled")
    assert out.device.type == "meta" and out.shape == ()


@pytest.mark.parametrize(
    ("pred", "target", "layers", "error", "match"),
    [
        (
            torch.rand(2, 1, 4, 4),
            torch.rand(2, 4, 4),
            "x",
            ValueError,
            r"target must have the same",
        ),
        (
            torch.rand(2, 4),
            torch.rand(2, 4),
            "x",
            ValueError,
            r"pred must have shape \(N, 1, H, W\)",
        ),
        (torch.rand(2, 4, 4), torch.rand(2, 4, 4), "y", ValueError, r"layers must be features"),
        (torch.rand(2, 4, 4), torch.rand(2, 4, 4) > 0, "x", TypeError, r"target must be a float"),
    ],
)
def test_topology_loss_invalid_input(pred, target, layers, error, match):
    with pytest.raises(error, match=match):
        topology_loss(pred, target, lambda x: {"x": x}, layers)


def test_module_exports():
    assert set(dense.__all__) == {
        "dice_loss",
        "topology_loss",
        "unet_weight_map",
        "weighted_pixel_cross_entropy",
    }
