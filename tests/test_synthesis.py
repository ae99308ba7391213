"""Tests of the image-synthesis losses and feature extractors (``cvloss_ref/synthesis.py``).

References: brute-force loops written from the papers in this file (Johnson et al.'s
feature reconstruction loss, Gatys et al.'s Gram matrices, style and content
losses), ``kornia.losses.total_variation``, and torchvision's VGG16 layout
(``torchvision.models.vgg.make_layers``).  Values and gradients are compared in
float64.
"""

from __future__ import annotations

from collections import OrderedDict

import kornia
import pytest
import torch
from torch import nn
from torch.autograd import gradcheck

import cvloss_ref.synthesis as syn
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.synthesis import (
    FeatureExtractor,
    content_loss,
    gram_matrix,
    perceptual_loss,
    style_loss,
    total_variation,
    vgg16_features,
)
from cvloss_ref.testing import check_loss
from tests._tolerances import TOLERANCES

F64 = torch.float64
REDUCTIONS = ["none", "mean", "sum"]
HALF_DTYPES = [torch.float16, torch.bfloat16]


# ----------------------------------------------------------------------------- helpers


def _small_net(dtype=F64) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.Tanh(),
        nn.Conv2d(4, 5, 3, stride=2, padding=1),
        nn.Tanh(),
    )
    return net.to(dtype).requires_grad_(False)


def _brute_layer_distance(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Johnson et al.: ||phi(a_i) - phi(b_i)||^2 / (C H W) for each image i, by loops."""
    out = []
    for i in range(a.shape[0]):
        flat_a, flat_b = a[i].flatten().tolist(), b[i].flatten().tolist()
        out.append(sum((x - y) ** 2 for x, y in zip(flat_a, flat_b)) / len(flat_a))
    return out


def _brute_gram(features: torch.Tensor, normalize: bool) -> torch.Tensor:
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)
    m = flat.shape[2]
    gram = torch.zeros(n, c, c, dtype=F64)
    for i in range(n):
        for p in range(c):
            for q in range(c):
                gram[i, p, q] = sum(float(flat[i, p, k] * flat[i, q, k]) for k in range(m))
    return gram / (c * m) if normalize else gram


def _grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


# ----------------------------------------------------------------------------- FeatureExtractor


def _torchvision_vgg16_features() -> nn.Sequential:
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    return make_layers(cfgs["D"]).eval()


def test_feature_extractor_on_torchvision_vgg16_layout_same_as_slicing():
    features = _torchvision_vgg16_features()
    x = torch.rand(1, 3, 16, 16)
    out = FeatureExtractor(features, ["8", "3"])(x)
    assert list(out) == ["8", "3"]  # the order of layers
    with torch.no_grad():
        torch.testing.assert_close(out["3"], features[:4](x))
        torch.testing.assert_close(out["8"], features[:9](x))


def test_feature_extractor_refuses_outputs_overwritten_by_inplace_relu():
    features = _torchvision_vgg16_features()  # ReLU(inplace=True), as in torchvision
    with pytest.raises(RuntimeError, match=r"modified in place .*inplace=False"):
        FeatureExtractor(features, ["0", "3"])(torch.rand(1, 3, 8, 8))


def test_feature_extractor_stops_early_on_sequential():
    class Boom(nn.Module):
        def forward(self, x):
            raise AssertionError("ran past the last requested layer")

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), Boom())
    out = FeatureExtractor(net, "1")(torch.rand(1, 1, 5, 5))
    assert out["1"].shape == (1, 2, 3, 3)


def test_feature_extractor_on_custom_module_with_nested_names():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.block = nn.Sequential(OrderedDict(conv=nn.Conv2d(4, 4, 1), act=nn.Sigmoid()))
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            x = self.block(self.stem(x))
            return self.head(x.mean((2, 3)))

    net = Net().to(F64)
    x = torch.rand(2, 3, 5, 5, dtype=F64, requires_grad=True)
    out = FeatureExtractor(net, ["block.conv", "stem", ""])(x)
    expected_stem = net.stem(x)
    torch.testing.assert_close(out["stem"], expected_stem)
    torch.testing.assert_close(out["block.conv"], net.block.conv(expected_stem))
    torch.testing.assert_close(out[""], net(x))  # "" is the whole module
    out["block.conv"].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_feature_extractor_under_inference_mode():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    with torch.inference_mode():
        out = FeatureExtractor(net, ["0", "1"])(torch.rand(1, 3, 5, 5))
    assert out["1"].shape == (1, 2, 3, 3)


def test_feature_extractor_leaves_no_hooks_behind():
    net = _small_net()
    FeatureExtractor(net, ["1", "3"])(torch.rand(1, 3, 4, 4, dtype=F64))
    assert all(not m._forward_hooks for m in net.modules())


def test_feature_extractor_moves_with_to():
    extractor = FeatureExtractor(nn.Sequential(nn.Conv2d(3, 2, 1)), "0").to(F64)
    assert extractor(torch.rand(1, 3, 2, 2, dtype=F64))["0"].dtype == F64


@pytest.mark.parametrize(
    ("module", "layers", "error", "match"),
    [
        (nn.Sequential(nn.Conv2d(3, 2, 1)), ["1"], ValueError, r"layers must be names .*'0'"),
        (
            nn.Sequential(OrderedDict(conv1=nn.Conv2d(3, 2, 1))),
            ["conv"],
            ValueError,
            r"did you mean 'conv1'",
        ),
        (nn.Sequential(nn.Conv2d(3, 2, 1)), [], ValueError, r"at least one layer"),
        (nn.Sequential(nn.Conv2d(3, 2, 1)), ["0", "0"], ValueError, r"must not repeat"),
        (nn.Sequential(nn.Conv2d(3, 2, 1)), [0], TypeError, r"layers must be a layer name"),
        (lambda x: x, ["0"], TypeError, r"module must be a torch.nn.Module, got function"),
    ],
)
def test_feature_extractor_invalid_input(module, layers, error, match):
    with pytest.raises(error, match=match):
        FeatureExtractor(module, layers)


# ----------------------------------------------------------------------------- vgg16_features


@pytest.fixture(scope="module")
def vgg() -> nn.Sequential:
    torch.manual_seed(0)
    return vgg16_features()


def test_vgg16_features_layout_same_as_torchvision(vgg):
    reference = _torchvision_vgg16_features()
    ours = {k: tuple(v.shape) for k, v in vgg.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert [type(m) for m in vgg] == [type(m) for m in reference]
    assert not any(getattr(m, "inplace", False) for m in vgg)


def test_vgg16_features_is_frozen_and_in_eval_mode(vgg):
    assert not vgg.training
    assert not any(p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = FeatureExtractor(vgg, ["3", "8"])(x)
    assert out["3"].shape == (1, 64, 32, 32) and out["8"].shape == (1, 128, 16, 16)
    out["8"].sum().backward()  # gradients reach the image, not the weights
    assert x.grad is not None and all(p.grad is None for p in vgg.parameters())


@pytest.mark.parametrize("style", ["full model", "features only", "dict, not a file"])
def test_vgg16_features_loads_a_local_state_dict(vgg, tmp_path, style):
    state = {k: torch.randn_like(v) for k, v in vgg.state_dict().items()}
    if style == "full model":
        saved = {f"features.{k}": v for k, v in state.items()}
        saved["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    else:
        saved = state
    if style == "dict, not a file":
        weights = saved
    else:
        weights = tmp_path / "vgg16.pth"
        torch.save(saved, weights)
    loaded = vgg16_features(weights)
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_vgg16_features_loads_a_path_given_as_str(vgg, tmp_path):
    path = tmp_path / "features.pt"
    torch.save(vgg.state_dict(), path)
    loaded = vgg16_features(str(path))
    torch.testing.assert_close(loaded[0].weight, vgg[0].weight)


def test_vgg16_features_invalid_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing is downloaded"):
        vgg16_features(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"0.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match=r"not a torchvision VGG16 state dict"):
        vgg16_features(bad)
    with pytest.raises(TypeError, match=r"would need a download"):
        vgg16_features(123)


# ----------------------------------------------------------------------------- perceptual_loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_perceptual_loss_same_as_brute_force_definition(generator, reduction):
    net = _small_net()
    extractor = FeatureExtractor(net, ["1", "2", "3"])
    pred = torch.rand(3, 3, 6, 6, generator=generator, dtype=F64)
    target = torch.rand(3, 3, 6, 6, generator=generator, dtype=F64)
    layers, weights = ["1", "3"], [0.7, 2.0]
    out = perceptual_loss(pred, target, extractor, layers, weights, reduction=reduction)
    with torch.no_grad():
        per_image = [0.0] * 3
        for index, weight in zip([2, 4], weights):  # layers "1" and "3": net[:2], net[:4]
            distance = _brute_layer_distance(net[:index](pred), net[:index](target))
            per_image = [t + weight * d for t, d in zip(per_image, distance)]
    expected = torch.tensor(per_image, dtype=F64)
    if reduction != "none":
        expected = expected.mean() if reduction == "mean" else expected.sum()
    torch.testing.assert_close(out, expected)


def test_perceptual_loss_gradcheck(generator):
    extractor = FeatureExtractor(_small_net(), ["1", "3"])
    pred = torch.rand(2, 3, 4, 4, generator=generator, dtype=F64, requires_grad=True)
    target = torch.rand(2, 3, 4, 4, generator=generator, dtype=F64)
    assert gradcheck(
        lambda p: perceptual_loss(p, target, extractor, ["1", "3"], reduction="none"), (pred,)
    )


def test_perceptual_loss_target_gets_no_gradient(generator):
    extractor = FeatureExtractor(_small_net(), "1")
    pred = torch.rand(2, 3, 4, 4, generator=generator, dtype=F64, requires_grad=True)
    target = torch.rand(2, 3, 4, 4, generator=generator, dtype=F64, requires_grad=True)
    perceptual_loss(pred, target, extractor, "1").backward()
    assert pred.grad is not None and target.grad is None


def test_perceptual_loss_weights_mapping_same_as_sequence(generator):
    extractor = FeatureExtractor(_small_net(), ["1", "3"])
    pred, target = torch.rand(2, 2, 3, 5, 5, generator=generator, dtype=F64)
    by_name = perceptual_loss(pred, target, extractor, ["1", "3"], {"3": 0.5, "1": 2.0})
    by_order = perceptual_loss(pred, target, extractor, ["1", "3"], [2.0, 0.5])
    torch.testing.assert_close(by_name, by_order)


def test_perceptual_loss_is_zero_for_identical_images(generator):
    extractor = FeatureExtractor(_small_net(), ["1", "3"])
    pred = torch.rand(2, 3, 4, 4, generator=generator, dtype=F64)
    value, grad = _grad(perceptual_loss, pred, pred.clone(), extractor, ["1", "3"])
    assert value == 0 and torch.all(grad == 0)


def test_perceptual_loss_with_vgg16_features(vgg):
    extractor = FeatureExtractor(vgg, ["3", "8"])
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    loss = perceptual_loss(pred, torch.rand(2, 3, 16, 16), extractor, ["3", "8"])
    loss.backward()
    assert loss.shape == () and torch.isfinite(pred.grad).all()


def _identity_features(x):
    return {"x": x, "square": x * x}


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_perceptual_loss_half_precision_returns_input_dtype(generator, dtype):
    pred = torch.rand(2, 3, 4, 4, generator=generator).to(dtype)
    target = torch.rand(2, 3, 4, 4, generator=generator).to(dtype)
    out = perceptual_loss(pred, target, _identity_features, ["x", "square"])
    assert out.dtype == dtype
    expected = perceptual_loss(pred.float(), target.float(), _identity_features, ["x", "square"])
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


def test_perceptual_loss_meta_tensors():
    pred = torch.rand(2, 3, 4, 4, device="meta", requires_grad=True)
    out = perceptual_loss(pred, torch.rand(2, 3, 4, 4, device="meta"), _identity_features, "x")
    assert out.device.type == "meta" and out.shape == ()


def test_perceptual_loss_on_device_same_as_cpu(generator, device):
    pred, target = torch.rand(2, 2, 3, 4, 4, generator=generator, dtype=F64)
    expected = _grad(perceptual_loss, pred, target, _identity_features, ["x", "square"])
    received = _grad(
        perceptual_loss, pred.to(device), target.to(device), _identity_features, ["x", "square"]
    )
    assert received[0].device.type == device.type
    torch.testing.assert_close([r.cpu() for r in received], list(expected))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(layers=["nope"]), ValueError, r"layers must be features .*'x', 'square'"),
        (dict(layers=["x"], weights=[1.0, 2.0]), ValueError, r"one number per layer \(1\), got 2"),
        (dict(layers=["x"], weights={"y": 1.0}), ValueError, r"one entry per layer \['x'\]"),
        (dict(layers=["x"], weights=[-1.0]), ValueError, r"weights\[0\] must be >= 0.0"),
        (dict(layers=["x"], reduction="avg"), ValueError, r"reduction must be one of"),
        (dict(layers="x", feature_extractor=3), TypeError, r"feature_extractor must be callable"),
        (
            dict(layers="x", feature_extractor=lambda x: [x]),
            TypeError,
            r"must return a mapping",
        ),
        (dict(layers="x", target=torch.rand(2, 3, 4)), ValueError, r"target must have the same"),
    ],
)
def test_perceptual_loss_invalid_input(kwargs, error, match):
    args = dict(
        pred=torch.rand(2, 3, 4, 4),
        target=torch.rand(2, 3, 4, 4),
        feature_extractor=_identity_features,
    )
    args.update(kwargs)
    with pytest.raises(error, match=match):
        perceptual_loss(**args)


# ----------------------------------------------------------------------------- gram_matrix


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (1, 4, 2, 3), (2, 2, 5)])
def test_gram_matrix_same_as_brute_force_definition(generator, shape, normalize):
    features = torch.randn(shape, generator=generator, dtype=F64)
    out = gram_matrix(features, normalize=normalize)
    torch.testing.assert_close(out, _brute_gram(features, normalize))
    torch.testing.assert_close(out, out.transpose(1, 2))


def test_gram_matrix_gradcheck(generator):
    features = torch.randn(2, 3, 3, 2, generator=generator, dtype=F64, requires_grad=True)
    assert gradcheck(gram_matrix, (features,))
    assert gradcheck(lambda f: gram_matrix(f, normalize=False), (features,))


def test_gram_matrix_float16_activations_of_1e3_do_not_overflow(generator):
    sign = torch.randint(0, 2, (2, 32, 8, 8), generator=generator) * 2 - 1
    features = (1e3 * sign).to(torch.float16)
    flat = features.flatten(2)
    assert torch.isinf(flat @ flat.transpose(1, 2)).any()  # the naive float16 product
    out = gram_matrix(features)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    expected = gram_matrix(features.double())
    torch.testing.assert_close(out.double(), expected, **TOLERANCES[torch.float16])


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_gram_matrix_half_precision_returns_input_dtype(generator, dtype):
    features = torch.randn(2, 3, 4, 4, generator=generator).to(dtype)
    out = gram_matrix(features)
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), gram_matrix(features.float()), **TOLERANCES[dtype])


def test_gram_matrix_empty_spatial_dims_is_zero():
    assert torch.equal(gram_matrix(torch.zeros(2, 3, 0, 4)), torch.zeros(2, 3, 3))


def test_gram_matrix_meta_and_device(generator, device):
    out = gram_matrix(torch.rand(2, 3, 4, 4, device="meta"))
    assert out.device.type == "meta" and out.shape == (2, 3, 3)
    features = torch.randn(2, 3, 4, 4, generator=generator, dtype=F64)
    torch.testing.assert_close(gram_matrix(features.to(device)).cpu(), gram_matrix(features))


def test_gram_matrix_invalid_input():
    with pytest.raises(ValueError, match=r"features must have shape \(N, C, H, W\).*got shape"):
        gram_matrix(torch.rand(3, 4))
    with pytest.raises(TypeError, match=r"features must be a floating-point tensor"):
        gram_matrix(torch.ones(1, 2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"normalize must be a bool"):
        gram_matrix(torch.rand(1, 2, 3), normalize=1)


# ----------------------------------------------------------------------------- style_loss


def _feature_dict(generator, batch=2, sizes=(6, 3)):
    return {
        "relu1": torch.randn(batch, 3, sizes[0], sizes[0], generator=generator, dtype=F64),
        "relu2": torch.randn(batch, 5, sizes[1], sizes[1], generator=generator, dtype=F64),
    }


def test_style_loss_same_as_brute_force_definition(generator):
    pred, style = _feature_dict(generator), _feature_dict(generator)
    weights = {"relu1": 0.3, "relu2": 2.0}
    expected = 0.0
    for name, weight in weights.items():
        g_pred, g_style = _brute_gram(pred[name], True), _brute_gram(style[name], True)
        n, c = g_pred.shape[:2]
        expected += weight * float(((g_pred - g_style) ** 2).sum()) / (n * c * c)
    out = style_loss(pred, style, weights)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=F64))


def test_style_loss_is_4_e_l_over_c_squared_of_gatys(generator):
    pred = torch.randn(1, 4, 3, 5, generator=generator, dtype=F64)
    style = torch.randn(1, 4, 3, 5, generator=generator, dtype=F64)
    channels, positions = 4, 15
    raw = _brute_gram(pred, False) - _brute_gram(style, False)
    e_l = float((raw**2).sum()) / (4 * channels**2 * positions**2)
    torch.testing.assert_close(
        style_loss(pred, style), torch.tensor(4 * e_l / channels**2, dtype=F64)
    )


def test_style_loss_one_style_image_of_another_size_serves_the_batch(generator):
    pred = _feature_dict(generator, batch=3)
    style = _feature_dict(generator, batch=1, sizes=(8, 4))
    out = style_loss(pred, style)
    repeated = {k: v.expand(3, -1, -1, -1) for k, v in style.items()}
    torch.testing.assert_close(out, style_loss(pred, repeated))


def test_style_loss_layers_are_those_of_the_style_features(generator):
    pred, style = _feature_dict(generator), _feature_dict(generator)
    pred["content"] = torch.randn(2, 2, 2, 2, dtype=F64)  # extra pred layers are ignored
    as_lists = style_loss([pred["relu1"], pred["relu2"]], [style["relu1"], style["relu2"]])
    torch.testing.assert_close(style_loss(pred, style), as_lists)


def test_style_loss_gradient_same_as_autograd_of_brute_force(generator):
    pred = torch.randn(2, 3, 3, 3, generator=generator, dtype=F64, requires_grad=True)
    style = torch.randn(1, 3, 4, 4, generator=generator, dtype=F64)
    assert gradcheck(lambda p: style_loss(p, style, weights=[1.5]), (pred,))
    value, grad = _grad(style_loss, pred, pred.detach().clone())
    assert value == 0 and torch.all(grad == 0)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_style_loss_half_precision_is_computed_in_float32(generator, dtype):
    pred = (100 * torch.randn(2, 16, 4, 4, generator=generator)).to(dtype)
    style = (100 * torch.randn(1, 16, 4, 4, generator=generator)).to(dtype)
    out = style_loss(pred, style)
    assert out.dtype == dtype and torch.isfinite(out)
    torch.testing.assert_close(
        out.float(), style_loss(pred.float(), style.float()), **TOLERANCES[dtype]
    )


def test_style_loss_meta_and_device(generator, device):
    out = style_loss(torch.rand(2, 3, 4, 4, device="meta"), torch.rand(1, 3, 5, 5, device="meta"))
    assert out.device.type == "meta" and out.shape == ()
    pred, style = _feature_dict(generator), _feature_dict(generator)
    moved = style_loss(
        {k: v.to(device) for k, v in pred.items()}, {k: v.to(device) for k, v in style.items()}
    )
    torch.testing.assert_close(moved.cpu(), style_loss(pred, style))


@pytest.mark.parametrize(
    ("pred", "style", "kwargs", "error", "match"),
    [
        (
            torch.rand(2, 3, 4, 4),
            torch.rand(2, 4, 4, 4),
            {},
            ValueError,
            r"must have the 3 channels",
        ),
        (torch.rand(3, 3, 4, 4), torch.rand(2, 3, 4, 4), {}, ValueError, r"batch size 1 or that"),
        (torch.rand(3, 4), torch.rand(3, 4), {}, ValueError, r"pred_feats \(layer 0\) must have"),
        ({"a": torch.rand(1, 2, 2, 2)}, {"b": torch.rand(1, 2, 2, 2)}, {}, ValueError, r"missing"),
        ([torch.rand(1, 2, 2, 2)], {"a": torch.rand(1, 2, 2, 2)}, {}, TypeError, r"mapping"),
        ([], [], {}, ValueError, r"at least one layer"),
        (torch.rand(1, 2, 2, 2), torch.rand(1, 2, 2, 2), {"weights": 2.0}, TypeError, r"weights"),
        (
            [torch.rand(1, 2, 2, 2)],
            [torch.rand(1, 2, 2, 2)],
            {"weights": {"a": 1.0}},
            TypeError,
            r"mapping only when the layers are named",
        ),
    ],
)
def test_style_loss_invalid_input(pred, style, kwargs, error, match):
    with pytest.raises(error, match=match):
        style_loss(pred, style, **kwargs)


# ------------------------------------------------- the harness and several layers (lists)


def _student_layers(pred_feats, other_feats):
    if isinstance(pred_feats, torch.Tensor):
        return [pred_feats], [other_feats]
    return list(pred_feats), list(other_feats)


def _student_gram(features):
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / max(flat.shape[1] * flat.shape[2], 1)


def _student_mean(values):
    return values.mean() if values.numel() else 0.0 * values.sum()


def _style_reading_the_first_layer_only(pred_feats, style_feats, weights=None):
    """Right for one layer; with lists, it reads pred_feats[0] and style_feats[0] only."""
    preds, styles = _student_layers(pred_feats, style_feats)
    weight = 1.0 if weights is None else weights[0]
    diff = _student_gram(preds[0]) - _student_gram(styles[0])
    return weight * _student_mean(diff * diff)


def _content_reading_the_first_layer_only(pred_feats, content_feats):
    preds, contents = _student_layers(pred_feats, content_feats)
    return _student_mean((preds[0] - contents[0]) ** 2)


@pytest.mark.parametrize(
    ("name", "student", "hint"),
    [
        ("style_loss", _style_reading_the_first_layer_only, "not only the first layer's"),
        ("content_loss", _content_reading_the_first_layer_only, "not only the first layer's"),
    ],
)
def test_harness_rejects_a_student_who_reads_only_the_first_layer(name, student, hint):
    result = check_loss(student, name)
    assert not result.ok
    failed = {failure.case for failure in result.failures}
    # Right on every one-layer case, wrong on every case with several layers.
    several = {
        case.name
        for case in CATALOGUE[name].cases
        if not isinstance(case.make(torch.Generator().manual_seed(0), F64)[0][0], torch.Tensor)
    }
    assert len(several) >= 2 and failed == several, failed
    assert hint in result.message()


def test_harness_rejects_a_style_loss_that_ignores_the_layer_weights():
    def unweighted(pred_feats, style_feats, weights=None):
        preds, styles = _student_layers(pred_feats, style_feats)
        total = 0.0
        for pred, style in zip(preds, styles):
            diff = _student_gram(pred) - _student_gram(style)
            total = total + _student_mean(diff * diff)
        return total

    result = check_loss(unweighted, "style_loss")
    assert not result.ok
    assert "multiply each layer's term by its weight" in result.message()


# ----------------------------------------------------------------------------- content_loss


def test_content_loss_same_as_brute_force_definition(generator):
    pred, content = _feature_dict(generator), _feature_dict(generator)
    expected = sum(sum(_brute_layer_distance(pred[k], content[k])) / pred[k].shape[0] for k in pred)
    torch.testing.assert_close(content_loss(pred, content), torch.tensor(expected, dtype=F64))


def test_content_loss_relation_to_gatys_half_sum(generator):
    pred = torch.randn(1, 3, 4, 4, generator=generator, dtype=F64)
    content = torch.randn(1, 3, 4, 4, generator=generator, dtype=F64)
    gatys = 0.5 * ((pred - content) ** 2).sum()
    torch.testing.assert_close(content_loss(pred, content), gatys * 2 / pred.numel())


def test_content_loss_equals_perceptual_loss_on_the_same_features(generator):
    pred, content = torch.rand(2, 3, 3, 4, 4, generator=generator, dtype=F64)
    features = _identity_features(pred), _identity_features(content)
    torch.testing.assert_close(
        content_loss(*features), perceptual_loss(pred, content, _identity_features, ["x", "square"])
    )


def test_content_loss_gradcheck_and_zero_at_equality(generator):
    pred = torch.randn(2, 3, 3, generator=generator, dtype=F64, requires_grad=True)
    content = torch.randn(2, 3, 3, generator=generator, dtype=F64)
    assert gradcheck(lambda p: content_loss([p, p * 2], [content, content]), (pred,))
    value, grad = _grad(content_loss, pred, pred.detach().clone())
    assert value == 0 and torch.all(grad == 0)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_content_loss_half_precision_is_computed_in_float32(generator, dtype):
    pred = (100 * torch.randn(2, 3, 4, 4, generator=generator)).to(dtype)
    content = (100 * torch.randn(2, 3, 4, 4, generator=generator)).to(dtype)
    squared = (pred - content) ** 2
    assert torch.isinf(squared.sum()) or dtype == torch.bfloat16  # float16 sums overflow
    out = content_loss(pred, content)
    assert out.dtype == dtype and torch.isfinite(out)
    torch.testing.assert_close(
        out.float(), content_loss(pred.float(), content.float()), **TOLERANCES[dtype]
    )


def test_content_loss_meta_and_empty_batch():
    out = content_loss(torch.rand(2, 3, 4, device="meta"), torch.rand(2, 3, 4, device="meta"))
    assert out.device.type == "meta"
    assert content_loss(torch.rand(0, 3, 4), torch.rand(0, 3, 4)) == 0


def test_content_loss_invalid_input():
    with pytest.raises(ValueError, match=r"content_feats \(layer 0\) must have the same shape"):
        content_loss(torch.rand(2, 3, 4, 4), torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"one feature map per layer"):
        content_loss([torch.rand(1, 2)], [torch.rand(1, 2), torch.rand(1, 2)])
    with pytest.raises(TypeError, match=r"content_feats must be a tensor, a sequence"):
        content_loss(torch.rand(1, 2), 3.0)


# ----------------------------------------------------------------------------- total_variation


def _brute_tv(image: torch.Tensor, p: int) -> float:
    """Loops over every pair of vertical and horizontal neighbours of one image (C, H, W)."""
    channels, height, width = image.shape
    total = 0.0
    for c in range(channels):
        for h in range(height):
            for w in range(width):
                if h + 1 < height:
                    total += abs(float(image[c, h + 1, w] - image[c, h, w])) ** p
                if w + 1 < width:
                    total += abs(float(image[c, h, w + 1] - image[c, h, w])) ** p
    return total


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p", [1, 2])
def test_total_variation_same_as_brute_force_definition(generator, p, reduction):
    images = torch.rand(3, 2, 4, 5, generator=generator, dtype=F64)
    expected = torch.tensor([_brute_tv(image, p) for image in images], dtype=F64)
    if reduction != "none":
        expected = expected.mean() if reduction == "mean" else expected.sum()
    torch.testing.assert_close(total_variation(images, p=p, reduction=reduction), expected)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 6, 6), (1, 1, 1, 5)])
def test_total_variation_value_same_as_kornia(generator, shape):
    images = torch.rand(shape, generator=generator, dtype=F64, requires_grad=True)
    theirs = kornia.losses.total_variation(images, reduction="sum").sum(-1)  # (N, C) -> (N,)
    ours = total_variation(images, reduction="none")
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs)
    cotangent = torch.randn(ours.shape, generator=generator, dtype=F64)
    torch.testing.assert_close(
        torch.autograd.grad(ours, images, cotangent)[0],
        torch.autograd.grad(theirs, images, cotangent)[0],
    )


@pytest.mark.parametrize("p", [1, 2])
def test_total_variation_gradcheck(generator, p):
    images = torch.rand(2, 2, 3, 3, generator=generator, dtype=F64, requires_grad=True)
    assert gradcheck(lambda x: total_variation(x, p=p, reduction="none"), (images,))


def test_total_variation_of_a_flat_image_is_zero_with_zero_gradient():
    value, grad = _grad(total_variation, torch.full((2, 3, 4, 4), 0.5, dtype=F64))
    assert value == 0 and torch.all(grad == 0)


def test_total_variation_shape_of_one_image_and_empty_batch():
    assert total_variation(torch.rand(3, 4, 4), reduction="none").shape == ()
    assert total_variation(torch.rand(0, 3, 4, 4)) == 0
    assert total_variation(torch.rand(0, 3, 4, 4), reduction="none").shape == (0,)


@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_total_variation_half_precision_returns_input_dtype(generator, dtype):
    images = torch.rand(2, 3, 8, 8, generator=generator).to(dtype)
    out = total_variation(images, p=2, reduction="none")
    assert out.dtype == dtype
    expected = total_variation(images.float(), p=2, reduction="none")
    torch.testing.assert_close(out.float(), expected, **TOLERANCES[dtype])


def test_total_variation_meta_and_device(generator, device):
    out = total_variation(torch.rand(2, 3, 4, 4, device="meta"), reduction="none")
    assert out.device.type == "meta" and out.shape == (2,)
    images = torch.rand(2, 3, 4, 4, generator=generator, dtype=F64)
    expected = _grad(total_variation, images, p=2)
    received = _grad(total_variation, images.to(device), p=2)
    torch.testing.assert_close([r.cpu() for r in received], list(expected))


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "match"),
    [
        (torch.rand(4, 4), {}, ValueError, r"images must have shape \(N, C, H, W\) or \(C, H, W\)"),
        (torch.rand(1, 3, 4, 4), {"p": 3}, ValueError, r"p must be 1 or 2, got 3"),
        (torch.rand(1, 3, 4, 4), {"p": True}, ValueError, r"p must be 1 or 2, got True"),
        (torch.ones(1, 3, 4, 4, dtype=torch.uint8), {}, TypeError, r"images must be a floating"),
        (torch.rand(1, 3, 4, 4), {"reduction": "batchmean"}, ValueError, r"reduction must be"),
    ],
)
def test_total_variation_invalid_input(images, kwargs, error, match):
    with pytest.raises(error, match=match):
        total_variation(images, **kwargs)


def test_module_exports():
    assert set(syn.__all__) == {
        "FeatureExtractor",
        "content_loss",
        "gram_matrix",
        "perceptual_loss",
        "style_loss",
        "total_variation",
        "vgg16_features",
    }


# ------------------------------------------------------------------------ reduction=


def _layers(generator, n):
    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    return {"relu1": rand(n, 4, 6, 6), "relu2": rand(n, 6, 3, 3)}


def test_style_loss_reduction_none_is_the_loss_of_each_image(generator):
    pred, style = _layers(generator, 3), _layers(generator, 1)
    weights = {"relu1": 1.0, "relu2": 0.5}
    per_image = style_loss(pred, style, weights, reduction="none")
    # Independent of the batch: each image alone, against the same style image.
    expected = torch.stack(
        [style_loss({k: v[i : i + 1] for k, v in pred.items()}, style, weights) for i in range(3)]
    )
    assert per_image.shape == (3,)
    torch.testing.assert_close(per_image, expected)
    torch.testing.assert_close(style_loss(pred, style, weights, reduction="sum"), expected.sum())
    torch.testing.assert_close(style_loss(pred, style, weights), expected.mean())


def test_content_loss_reduction_none_is_the_loss_of_each_image(generator):
    pred, content = _layers(generator, 3), _layers(generator, 3)
    per_image = content_loss(pred, content, reduction="none")
    expected = torch.stack(
        [
            sum(((pred[k][i] - content[k][i]) ** 2).mean() for k in pred)  # the definition
            for i in range(3)
        ]
    )
    torch.testing.assert_close(per_image, expected)
    torch.testing.assert_close(content_loss(pred, content, reduction="sum"), expected.sum())
    torch.testing.assert_close(content_loss(pred, content), expected.mean())


@pytest.mark.parametrize("loss", [style_loss, content_loss])
def test_feature_losses_of_an_empty_batch_are_zero_with_a_gradient(loss):
    pred = torch.empty(0, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.empty(0, 4, 3, 3, dtype=torch.float64)
    for reduction in ("mean", "sum"):
        out = loss(pred, target, reduction=reduction)
        (grad,) = torch.autograd.grad(out, pred)
        assert out.item() == 0.0 and grad.shape == pred.shape
    assert loss(pred, target, reduction="none").shape == (0,)


@pytest.mark.parametrize("loss", [style_loss, content_loss])
def test_feature_losses_reject_an_unknown_reduction_and_mixed_batch_sizes(loss):
    pred = [torch.rand(2, 4, 3, 3), torch.rand(3, 4, 3, 3)]
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        loss(pred, pred, reduction="batchmean")
    with pytest.raises(ValueError, match=r"every layer must have the same batch size"):
        loss(pred, [p.flip(0) for p in pred], reduction="none")
