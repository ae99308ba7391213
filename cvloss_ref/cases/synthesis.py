"""Catalogue cases for the image-synthesis losses (book part V).

:func:`perceptual_loss` needs a feature extractor.  The harness moves only tensors
to the device it checks on, so a module's weights would stay on the CPU; the
cases therefore use :class:`TinyExtractor`, a fixed two-layer convolutional net
written as a plain callable that moves its (seeded, constant) weights to the
device and dtype of its input at every call: it runs on CPU, CUDA and ``meta``
alike.  :func:`style_loss` and :func:`content_loss` take one feature map (one
layer) or a list of them (one per layer): the harness moves and differentiates
every tensor of a list input, so their cases have one layer and several (with
different shapes and weights, and a first layer that matches its target, which a
student who reads only the first layer gets wrong).  Mappings from layer names,
which the references also take, are tested in ``tests/test_synthesis.py``: the
exercise asks for tensors and lists only.

The edge cases: identical images (loss 0, zero gradient), a style image of
another size and batch size 1, activations of 1e3 (Gram matrices), flat images
(total variation's kink at a zero difference, where only finite gradients are
required), images of one row, empty batches and the three reductions.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register

# ----------------------------------------------------------------------------- extractor


class TinyExtractor:
    """A deterministic 2-layer CNN as a callable: ``x (N, C, H, W)`` -> features
    ``conv1``, ``act1`` ``(N, 4, H, W)`` and ``conv2``, ``act2`` ``(N, 6, H/2, W/2)``
    (3x3 convolutions, tanh activations, the second with stride 2).

    The weights are drawn once from a seeded generator and moved to the input's
    device and dtype on each call, so the same object works on any device.
    """

    def __init__(self, in_channels: int) -> None:
        generator = torch.Generator().manual_seed(1234 + in_channels)
        self.in_channels = in_channels
        self.w1 = torch.randn(4, in_channels, 3, 3, generator=generator, dtype=torch.float64) / 3
        self.b1 = 0.1 * torch.randn(4, generator=generator, dtype=torch.float64)
        self.w2 = torch.randn(6, 4, 3, 3, generator=generator, dtype=torch.float64) / 6
        self.b2 = 0.1 * torch.randn(6, generator=generator, dtype=torch.float64)

    def __call__(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        def like(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=x.device, dtype=x.dtype)

        conv1 = F.conv2d(x, like(self.w1), like(self.b1), padding=1)
        act1 = torch.tanh(conv1)
        conv2 = F.conv2d(act1, like(self.w2), like(self.b2), stride=2, padding=1)
        act2 = torch.tanh(conv2)
        return OrderedDict(conv1=conv1, act1=act1, conv2=conv2, act2=act2)

    def __repr__(self) -> str:
        return f"TinyExtractor(in_channels={self.in_channels})"


# ----------------------------------------------------------------------------- inputs


def _randn(generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype, scale=1.0):
    return (scale * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)


def _images(shape=(2, 3, 6, 6), identical=False, **kwargs):
    """Two image batches (uniform in [0, 1]) and the tiny extractor (``layers`` etc. in kwargs)."""
    layers = kwargs.pop("layers")

    def make(generator: torch.Generator, dtype: torch.dtype):
        pred = torch.rand(shape, generator=generator, dtype=torch.float64)
        target = pred.clone() if identical else torch.rand(shape, generator=generator).double()
        extractor = TinyExtractor(shape[1])
        return (pred.to(dtype), target.to(dtype), extractor, layers), dict(kwargs)

    return make


def _features(shape=(2, 4, 5, 5), other=None, identical=False, scale=1.0, **kwargs):
    """Two feature maps: ``shape`` and ``other`` (default ``shape``)."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        pred = _randn(generator, shape, dtype, scale)
        target = pred.clone() if identical else _randn(generator, other or shape, dtype, scale)
        return (pred, target), dict(kwargs)

    return make


def _layers(shapes, others=None, identical=(), scale=1.0, **kwargs):
    """Lists of feature maps, one per layer: ``shapes`` and ``others`` (default
    ``shapes``); the layers whose index is in ``identical`` equal their target."""

    def make(generator: torch.Generator, dtype: torch.dtype):
        pred = [_randn(generator, shape, dtype, scale) for shape in shapes]
        target = [
            p.clone() if i in identical else _randn(generator, other, dtype, scale)
            for i, (p, other) in enumerate(zip(pred, others or shapes))
        ]
        return (pred, target), dict(kwargs)

    return make


def _one_features(shape, scale=1.0, **kwargs):
    def make(generator: torch.Generator, dtype: torch.dtype):
        return (_randn(generator, shape, dtype, scale),), dict(kwargs)

    return make


def _random_images(shape, flat=False, **kwargs):
    def make(generator: torch.Generator, dtype: torch.dtype):
        if flat:
            images = torch.full(shape, 0.5, dtype=torch.float64)
        else:
            images = torch.rand(shape, generator=generator, dtype=torch.float64)
        return (images.to(dtype),), dict(kwargs)

    return make


# ----------------------------------------------------------------------------- mistakes


def _student_reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean() if values.numel() else 0.0 * values.sum()
    if reduction == "sum":
        return values.sum()
    return values


def _layer_list(layers):
    return [layers] if isinstance(layers, str) else list(layers)


def _weight_list(weights, layers):
    if weights is None:
        return [1.0] * len(layers)
    if isinstance(weights, dict):
        return [weights[name] for name in layers]
    return list(weights)


def _perceptual_terms(pred, target, feature_extractor, layers, weights, term):
    layers = _layer_list(layers)
    pred_features = feature_extractor(pred)
    with torch.no_grad():
        target_features = feature_extractor(target)
    total = 0.0
    for name, weight in zip(layers, _weight_list(weights, layers)):
        total = total + weight * term(pred_features[name] - target_features[name])
    return total


def _perceptual_sum_of_squares(
    pred, target, feature_extractor, layers, weights=None, reduction="mean"
):
    loss = _perceptual_terms(
        pred, target, feature_extractor, layers, weights, lambda d: (d * d).flatten(1).sum(1)
    )
    return _student_reduce(loss, reduction)


def _perceptual_l1(pred, target, feature_extractor, layers, weights=None, reduction="mean"):
    loss = _perceptual_terms(
        pred, target, feature_extractor, layers, weights, lambda d: d.abs().flatten(1).mean(1)
    )
    return _student_reduce(loss, reduction)


def _perceptual_norm(pred, target, feature_extractor, layers, weights=None, reduction="mean"):
    def term(d):
        return torch.linalg.vector_norm(d.flatten(1), dim=1) / d[0].numel()

    loss = _perceptual_terms(pred, target, feature_extractor, layers, weights, term)
    return _student_reduce(loss, reduction)


def _perceptual_mean_over_layers(
    pred, target, feature_extractor, layers, weights=None, reduction="mean"
):
    loss = _perceptual_terms(
        pred, target, feature_extractor, layers, weights, lambda d: (d * d).flatten(1).mean(1)
    )
    return _student_reduce(loss / len(_layer_list(layers)), reduction)


def _perceptual_unweighted(pred, target, feature_extractor, layers, weights=None, reduction="mean"):
    loss = _perceptual_terms(
        pred, target, feature_extractor, layers, None, lambda d: (d * d).flatten(1).mean(1)
    )
    return _student_reduce(loss, reduction)


def _perceptual_first_layer_only(
    pred, target, feature_extractor, layers, weights=None, reduction="mean"
):
    first = _layer_list(layers)[:1]
    weight = _weight_list(weights, _layer_list(layers))[:1]
    loss = _perceptual_terms(
        pred, target, feature_extractor, first, weight, lambda d: (d * d).flatten(1).mean(1)
    )
    return _student_reduce(loss, reduction)


def _perceptual_pixels(pred, target, feature_extractor, layers, weights=None, reduction="mean"):
    d = pred - target
    return _student_reduce((d * d).flatten(1).mean(1), reduction)


def _gram_by_pixels(features, normalize=True):
    flat = features.flatten(2)
    gram = flat @ flat.transpose(1, 2)
    return gram / flat.shape[2] if normalize else gram


def _gram_never_normalized(features, normalize=True):
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2)


def _gram_always_normalized(features, normalize=True):
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / (flat.shape[1] * flat.shape[2])


def _gram_by_batch_too(features, normalize=True):
    flat = features.flatten(2)
    gram = flat @ flat.transpose(1, 2)
    return gram / features.numel() if normalize else gram


def _gram_pixel_correlations(features, normalize=True):
    flat = features.flatten(2)
    gram = flat.transpose(1, 2) @ flat
    return gram / (flat.shape[1] * flat.shape[2]) if normalize else gram


def _normalized_gram(features):
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / (flat.shape[1] * flat.shape[2])


def _student_layers(pred_feats, other_feats, weights=None):
    """``(pred, other, weight)`` per layer, as a student reads one tensor or lists."""
    if isinstance(pred_feats, torch.Tensor):
        pred_feats, other_feats = [pred_feats], [other_feats]
    if weights is None:
        weights = [1.0] * len(pred_feats)
    return list(zip(pred_feats, other_feats, weights))


def _over_layers(term, pred_feats, other_feats, weights=None):
    """The weighted sum over layers of ``term(pred, other)``: right except for the term."""
    total = 0.0
    for pred, other, weight in _student_layers(pred_feats, other_feats, weights):
        total = total + weight * term(pred, other)
    return total


def _style_mse(pred, style):
    d = _normalized_gram(pred) - _normalized_gram(style)
    return _student_reduce(d * d, "mean")


def _style_unnormalized(pred_feats, style_feats, weights=None):
    def term(pred, style):
        d = _gram_never_normalized(pred) - _gram_never_normalized(style)
        return _student_reduce(d * d, "mean")

    return _over_layers(term, pred_feats, style_feats, weights)


def _style_on_features(pred_feats, style_feats, weights=None):
    def term(pred, style):
        d = pred - style
        return _student_reduce(d * d, "mean")

    return _over_layers(term, pred_feats, style_feats, weights)


def _style_by_pixels(pred_feats, style_feats, weights=None):
    def term(pred, style):
        d = _gram_by_pixels(pred) - _gram_by_pixels(style)
        return _student_reduce(d * d, "mean")

    return _over_layers(term, pred_feats, style_feats, weights)


def _style_frobenius(pred_feats, style_feats, weights=None):
    def term(pred, style):
        d = _normalized_gram(pred) - _normalized_gram(style)
        return (d * d).sum()

    return _over_layers(term, pred_feats, style_feats, weights)


def _style_gatys_constant(pred_feats, style_feats, weights=None):
    def term(pred, style):
        channels, positions = pred.shape[1], pred[0, 0].numel()
        d = _gram_never_normalized(pred) - _gram_never_normalized(style)
        return (d * d).sum() / (4 * channels**2 * positions**2)

    return _over_layers(term, pred_feats, style_feats, weights)


def _style_first_layer_only(pred_feats, style_feats, weights=None):
    pred, style, weight = _student_layers(pred_feats, style_feats, weights)[0]
    return weight * _style_mse(pred, style)


def _style_unweighted(pred_feats, style_feats, weights=None):
    return _over_layers(_style_mse, pred_feats, style_feats)


def _content_mse(pred, content):
    d = pred - content
    return _student_reduce(d * d, "mean")


def _content_gatys_half_sum(pred_feats, content_feats):
    def term(pred, content):
        d = pred - content
        return 0.5 * (d * d).sum()

    return _over_layers(term, pred_feats, content_feats)


def _content_on_gram(pred_feats, content_feats):
    return _over_layers(_style_mse, pred_feats, content_feats)


def _content_l1(pred_feats, content_feats):
    return _over_layers(
        lambda pred, content: _student_reduce((pred - content).abs(), "mean"),
        pred_feats,
        content_feats,
    )


def _content_sum(pred_feats, content_feats):
    def term(pred, content):
        d = pred - content
        return (d * d).sum()

    return _over_layers(term, pred_feats, content_feats)


def _content_first_layer_only(pred_feats, content_feats):
    pred, content, _ = _student_layers(pred_feats, content_feats)[0]
    return _content_mse(pred, content)


def _content_mean_over_layers(pred_feats, content_feats):
    layers = _student_layers(pred_feats, content_feats)
    return _over_layers(_content_mse, pred_feats, content_feats) / len(layers)


def _tv_parts(images):
    return images[..., 1:, :] - images[..., :-1, :], images[..., :, 1:] - images[..., :, :-1]


def _tv_one_axis(images, p=1, reduction="mean"):
    diff_h, _ = _tv_parts(images)
    term = diff_h.abs() ** p
    return _student_reduce(term.sum((-3, -2, -1)), reduction)


def _tv_mean_over_pixels(images, p=1, reduction="mean"):
    diff_h, diff_w = _tv_parts(images)
    per_image = (diff_h.abs() ** p).sum((-3, -2, -1)) + (diff_w.abs() ** p).sum((-3, -2, -1))
    size = images.shape[-3] * images.shape[-2] * images.shape[-1]
    return _student_reduce(per_image / size, reduction)


def _tv_isotropic(images, p=1, reduction="mean"):
    diff_h, diff_w = _tv_parts(images)
    squared = diff_h[..., :, :-1] ** 2 + diff_w[..., :-1, :] ** 2
    term = torch.sqrt(squared) if p == 1 else squared
    return _student_reduce(term.sum((-3, -2, -1)), reduction)


def _tv_circular(images, p=1, reduction="mean"):
    diff_h = torch.roll(images, 1, dims=-2) - images
    diff_w = torch.roll(images, 1, dims=-1) - images
    per_image = (diff_h.abs() ** p).sum((-3, -2, -1)) + (diff_w.abs() ** p).sum((-3, -2, -1))
    return _student_reduce(per_image, reduction)


def _tv_ignores_p(images, p=1, reduction="mean"):
    diff_h, diff_w = _tv_parts(images)
    per_image = diff_h.abs().sum((-3, -2, -1)) + diff_w.abs().sum((-3, -2, -1))
    return _student_reduce(per_image, reduction)


# ----------------------------------------------------------------------------- specs

register(
    LossSpec(
        name="perceptual_loss",
        cases=(
            Case("random images, layer 'act1'", _images(layers=["act1"])),
            Case(
                "two layers, weights [1.0, 0.5]",
                _images(layers=["act1", "act2"], weights=[1.0, 0.5]),
                note="each layer's MSE is multiplied by its weight, then the layers are summed",
            ),
            Case(
                "weights as a mapping",
                _images(layers=["conv1", "conv2"], weights={"conv2": 2.0, "conv1": 0.5}),
            ),
            Case(
                "reduction='none' (one value per image)",
                _images((3, 3, 4, 4), layers=["conv1", "act2"], reduction="none"),
                note="'none' gives one loss per image, shape (N,)",
            ),
            Case("reduction='sum'", _images(layers=["act2"], reduction="sum")),
            Case("layers given as one name (str)", _images(layers="conv2")),
            Case(
                "identical images (loss 0)",
                _images(identical=True, layers=["act1", "act2"]),
                note="an image that equals its target costs 0, with a zero gradient",
            ),
            Case(
                "empty batch (0, 3, 6, 6)",
                _images((0, 3, 6, 6), layers=["act1"]),
                note="an empty batch gives 0 under reduction='mean' (not NaN)",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _perceptual_sum_of_squares,
                "divide each layer's squared distance by its size C_j * H_j * W_j (take the "
                "mean over the layer's elements, per image), as Johnson et al. do: a sum lets "
                "the largest layers dominate.",
            ),
            Mistake(
                _perceptual_l1,
                "the feature reconstruction loss squares the differences (a squared L2 "
                "distance), it is not an L1 distance.",
            ),
            Mistake(
                _perceptual_norm,
                "the distance is the *squared* Euclidean norm divided by C_j H_j W_j, not the "
                "norm itself.",
            ),
            Mistake(
                _perceptual_mean_over_layers,
                "sum the (weighted) layer terms; do not average over the layers.",
            ),
            Mistake(
                _perceptual_unweighted,
                "multiply each layer's term by its weight from weights (a list in the order of "
                "layers, or a dict by layer name).",
            ),
            Mistake(
                _perceptual_first_layer_only,
                "add a term for every layer in layers (each times its weight), not only the "
                "first one.",
            ),
            Mistake(
                _perceptual_pixels,
                "compare the features feature_extractor(pred)[layer] and "
                "feature_extractor(target)[layer], not the images' pixels.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="gram_matrix",
        cases=(
            Case("random (2, 3, 4, 4)", _one_features((2, 3, 4, 4))),
            Case(
                "normalize=False",
                _one_features((2, 3, 4, 4), normalize=False),
                note="normalize=False is the plain F F^T",
            ),
            Case("non-square maps (1, 5, 2, 3)", _one_features((1, 5, 2, 3))),
            Case("one channel (2, 1, 3, 3)", _one_features((2, 1, 3, 3))),
            Case(
                "activations of ±1e3",
                _one_features((2, 4, 3, 3), scale=1e3),
                note="large activations give large but finite Gram matrices",
            ),
            Case("3 spatial dims (1, 2, 2, 3, 2)", _one_features((1, 2, 2, 3, 2))),
            Case("empty batch (0, 3, 4, 4)", _one_features((0, 3, 4, 4))),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _gram_by_pixels,
                "normalize=True divides F F^T by C * H * W (the number of elements of one "
                "feature map), not by H * W only.",
            ),
            Mistake(
                _gram_never_normalized,
                "with normalize=True divide F F^T by C * H * W (the un-normalised Gram "
                "matrix, piq's convention, is normalize=False).",
            ),
            Mistake(
                _gram_always_normalized,
                "normalize=False returns the plain F F^T, without the division.",
            ),
            Mistake(
                _gram_by_batch_too,
                "normalise each image's Gram matrix by its own C * H * W; features.numel() "
                "also counts the batch.",
            ),
            Mistake(
                _gram_pixel_correlations,
                "the Gram matrix correlates channels: F F^T with F of shape (N, C, H*W) gives "
                "(N, C, C); F^T F correlates positions.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="style_loss",
        cases=(
            Case("random features (2, 4, 5, 5)", _features((2, 4, 5, 5))),
            Case(
                "one style image (1, 4, 6, 6) for a batch (3, 4, 4, 4)",
                _features((3, 4, 4, 4), other=(1, 4, 6, 6)),
                note="Gram matrices do not depend on the spatial size; one style image "
                "serves every image of the batch",
            ),
            Case("weights [2.5]", _features((2, 3, 4, 4), weights=[2.5])),
            Case(
                "identical features (loss 0)",
                _features((2, 4, 3, 3), identical=True),
                note="features with the style's Gram matrices cost 0, with a zero gradient",
            ),
            Case("activations of ±10", _features((2, 3, 4, 4), scale=10.0)),
            Case(
                "empty batch (0, 4, 3, 3)",
                _features((0, 4, 3, 3), other=(1, 4, 3, 3)),
                note="an empty batch gives 0 (not NaN)",
            ),
            Case(
                "two layers (lists), (2, 4, 5, 5) and (2, 6, 3, 3)",
                _layers([(2, 4, 5, 5), (2, 6, 3, 3)]),
                note="with lists of feature maps, the layer terms are summed",
            ),
            Case(
                "three layers, weights [1.0, 0.25, 3.0]",
                _layers([(2, 3, 4, 4), (2, 5, 3, 3), (2, 2, 2, 2)], weights=[1.0, 0.25, 3.0]),
                note="each layer's term is multiplied by its weight, then the layers are summed",
            ),
            Case(
                "two layers, one style image (1, C, H', W') each",
                _layers([(3, 4, 4, 4), (3, 6, 2, 2)], others=[(1, 4, 6, 6), (1, 6, 3, 3)]),
            ),
            Case(
                "two layers, the first with the style's Gram matrices",
                _layers([(2, 4, 3, 3), (2, 3, 4, 4)], identical=(0,), weights=[2.0, 0.5]),
                note="the first layer costs 0 here; the loss comes from the second one",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _style_first_layer_only,
                "sum the style terms of every layer in the lists pred_feats and style_feats "
                "(each times its weight), not only the first layer's.",
            ),
            Mistake(
                _style_unweighted,
                "multiply each layer's term by its weight from weights (one per layer).",
            ),
            Mistake(
                _style_unnormalized,
                "compare normalised Gram matrices F F^T / (C * H * W) (gram_matrix with "
                "normalize=True); un-normalised ones grow with the image size.",
            ),
            Mistake(
                _style_on_features,
                "the style loss compares Gram matrices of the features, not the features "
                "themselves (that is the content loss).",
            ),
            Mistake(
                _style_by_pixels,
                "normalise the Gram matrix by C * H * W, not by H * W only.",
            ),
            Mistake(
                _style_frobenius,
                "take the mean of the squared Gram differences (MSE over N * C * C entries), "
                "not their sum (Johnson's squared Frobenius norm is C^2 times larger).",
            ),
            Mistake(
                _style_gatys_constant,
                "this is Gatys et al.'s E_l = sum (G - A)^2 / (4 N^2 M^2) with raw Gram "
                "matrices; here the layer term is the MSE of normalised Gram matrices, "
                "4 E_l / C^2 per image.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="content_loss",
        cases=(
            Case("random features (2, 3, 4, 4)", _features((2, 3, 4, 4))),
            Case("one image (1, 8, 2, 2)", _features((1, 8, 2, 2))),
            Case("features (N, C, L) = (2, 5, 7)", _features((2, 5, 7))),
            Case(
                "identical features (loss 0)",
                _features((2, 3, 3, 3), identical=True),
                note="features equal to the content's cost 0, with a zero gradient",
            ),
            Case("activations of ±100", _features((2, 3, 4, 4), scale=100.0)),
            Case(
                "empty batch (0, 3, 4, 4)",
                _features((0, 3, 4, 4)),
                note="an empty batch gives 0 (not NaN)",
            ),
            Case(
                "two layers (lists), (2, 3, 4, 4) and (2, 5, 2, 2)",
                _layers([(2, 3, 4, 4), (2, 5, 2, 2)]),
                note="with lists of feature maps, each layer's MSE is added",
            ),
            Case(
                "three layers, the first equal to the content's",
                _layers([(2, 4, 3, 3), (2, 2, 5, 5), (2, 5, 7)], identical=(0,)),
                note="the first layer costs 0 here; the loss comes from the other two",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _content_first_layer_only,
                "add the MSE of every layer in the lists pred_feats and content_feats, not "
                "only the first layer's.",
            ),
            Mistake(
                _content_mean_over_layers,
                "sum the layers' MSEs; do not average over the layers.",
            ),
            Mistake(
                _content_gatys_half_sum,
                "the content loss here is the mean squared difference; Gatys et al.'s "
                "1/2 * sum((F - P) ** 2) is that times N * C * H * W / 2.",
            ),
            Mistake(
                _content_on_gram,
                "the content loss compares the feature maps themselves; Gram matrices "
                "(which discard where things are) belong to the style loss.",
            ),
            Mistake(
                _content_l1,
                "square the feature differences (an MSE), do not take their absolute value.",
            ),
            Mistake(
                _content_sum,
                "average the squared differences over all elements of the layer (MSE), do "
                "not sum them.",
            ),
        ),
    )
)

register(
    LossSpec(
        name="total_variation",
        cases=(
            Case("random (2, 3, 5, 4)", _random_images((2, 3, 5, 4))),
            Case(
                "one image (3, 4, 4)",
                _random_images((3, 4, 4)),
                note="a single image (C, H, W) gives a scalar",
            ),
            Case(
                "p=2",
                _random_images((2, 3, 4, 5), p=2),
                note="p=2 squares each difference (no square root)",
            ),
            Case(
                "reduction='none' (one sum per image)",
                _random_images((3, 2, 4, 4), reduction="none"),
                note="'none' gives one total per image, summed over channels, shape (N,)",
            ),
            Case("p=2, reduction='sum'", _random_images((2, 2, 3, 3), p=2, reduction="sum")),
            Case(
                "flat images (every difference 0)",
                _random_images((2, 3, 4, 4), flat=True),
                grad="finite",
                note="|d| has a kink at 0: any finite gradient is accepted",
            ),
            Case(
                "one row (2, 1, 1, 5)",
                _random_images((2, 1, 1, 5)),
                note="an image of one row has only horizontal differences",
            ),
            Case(
                "empty batch (0, 3, 4, 4)",
                _random_images((0, 3, 4, 4)),
                note="an empty batch gives 0 under reduction='mean' (not NaN)",
            ),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _tv_one_axis,
                "add the differences along both axes: vertical (H) and horizontal (W).",
            ),
            Mistake(
                _tv_mean_over_pixels,
                "total variation sums the differences of each image (over C, H and W); "
                "averaging over pixels is kornia's reduction='mean', not this function's.",
            ),
            Mistake(
                _tv_isotropic,
                "this is the isotropic TV sqrt(dh^2 + dw^2); the anisotropic TV sums |dh| "
                "and |dw| (and p=2 their squares) over all differences.",
            ),
            Mistake(
                _tv_circular,
                "take differences between neighbours inside the image only (x[..., 1:, :] - "
                "x[..., :-1, :]); torch.roll also compares the last row with the first.",
            ),
            Mistake(
                _tv_ignores_p,
                "with p=2 square each difference instead of taking its absolute value.",
            ),
        ),
    )
)
