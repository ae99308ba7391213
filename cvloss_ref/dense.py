r"""Dense-prediction (segmentation) losses: weighted pixel-wise cross entropy, U-Net's
weight map, soft Dice and the topology-aware perceptual loss.

Segmentation outputs are ``(N, C, H, W)`` score maps (any number of spatial dims
where the docstring says so) against class-index maps ``(N, H, W)`` or binary
masks.  The plain pixel-wise cross entropy is :func:`cvloss_ref.cross_entropy`
on ``(N, C, H, W)`` logits; :func:`weighted_pixel_cross_entropy` adds a per-pixel
weight map, such as the one :func:`unet_weight_map` computes from instance masks.

Conventions:

* ``reduction`` defaults to ``"mean"``; each docstring says what ``"none"``
  returns (per pixel, per sample and class, per sample).
* Half precision (float16, bfloat16) is computed in float32 and returned in the
  input dtype.
* No host synchronisation in the losses; :func:`unet_weight_map` is preprocessing
  (it reads the mask's values to find the instances), not a loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from ._numerics import safe_divide, weighted_mean
from ._numerics import upcast as _upcast
from ._reduction import _check_reduction, _reduce
from ._validation import (
    _check_class_indices,
    _check_floating,
    _check_integer,
    _check_number,
    _check_probabilities,
    _check_same_device,
    _check_same_shape,
    _check_tensor,
    _wants_values,
)
from .classification import cross_entropy
from .synthesis import _check_extractor, _check_layers, _extract, _per_sample_feature_mse

__all__ = [
    "dice_loss",
    "topology_loss",
    "unet_weight_map",
    "weighted_pixel_cross_entropy",
]

# Largest number of elements one block of the distance transform may hold
# (16 MB of float32), so that large masks do not need (H, W, W) at once.
_DISTANCE_BLOCK = 1 << 22


# --------------------------------------------------------------------------- helpers


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _spatial_shape_of_indices(logits: torch.Tensor) -> tuple[int, ...]:
    """Shape of class indices that go with ``(N, C, d1, ...)`` scores."""
    return (logits.shape[0], *logits.shape[2:])


# --------------------------------------------------------------------------- weighted CE


def weighted_pixel_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    pixel_weight: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Pixel-wise cross entropy with a per-pixel weight map (U-Net's weighted loss).

    With :math:`\ell_x` the cross entropy of pixel :math:`x`
    (:func:`cvloss_ref.cross_entropy` with ``reduction="none"``, class weights
    :math:`w_{y_x}` included, 0 on ignored pixels) and :math:`\omega(x)` the pixel
    weight,

    .. math::

        \mathcal{L}_{\mathrm{mean}} = \frac{\sum_{x} \omega(x)\, \ell_x}
                                           {\sum_{x:\, y_x \ne \mathrm{ignore}} \omega(x)},
        \qquad
        \mathcal{L}_{\mathrm{sum}} = \sum_x \omega(x)\, \ell_x .

    Ronneberger et al. minimise the weighted energy
    :math:`E = \sum_x \omega(x) \log p_{\ell(x)}(x)` (a sum, up to the sign); the
    ``"mean"`` here normalises it by the total pixel weight, so that the scale
    of the loss does not depend on the image size or on the weights' scale.  With
    :math:`\omega \equiv 1` and no class weights it equals ``cross_entropy``'s
    mean.  With class weights, the denominator is still :math:`\sum \omega(x)`
    over the kept pixels (not :math:`\sum \omega(x)\, w_{y_x}` as in
    ``cross_entropy``): the class weights scale the loss, the pixel weights
    define the average.  When the denominator is 0 (all pixels ignored, all
    weights 0, an empty batch) the loss is 0 with a zero gradient.

    Args:
        logits: scores ``(N, C, d1, ...)``, e.g. ``(N, C, H, W)``.
        target: class indices ``(N, d1, ...)`` (any integer dtype).
        pixel_weight: non-negative weights ``(N, d1, ...)``, the shape of
            ``target`` (e.g. from :func:`unet_weight_map`); not differentiated.
        weight: optional class weights ``(C,)``.
        ignore_index: pixels with this target count neither in the loss nor in the
            denominator (whatever their pixel weight).
        reduction: ``"none"`` (weighted per-pixel losses, shape ``(N, d1, ...)``) |
            ``"mean"`` | ``"sum"``.
        validate: also check values (class indices, weights >= 0); synchronises.

    Returns:
        The loss in the dtype of ``logits`` (computed in float32 for half
        precision): shape ``(N, d1, ...)`` for ``"none"``, else a scalar.

    Reference: O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks
    for Biomedical Image Segmentation", MICCAI 2015, equation (1).

    Example:
        >>> logits = torch.zeros(1, 2, 1, 2)  # two pixels, p = 1/2 everywhere
        >>> target = torch.tensor([[[0, 1]]])
        >>> pixel_weight = torch.tensor([[[3.0, 1.0]]])
        >>> weighted_pixel_cross_entropy(logits, target, pixel_weight)  # log 2
        tensor(0.6931)
        >>> weighted_pixel_cross_entropy(logits, target, pixel_weight, reduction="none")
        tensor([[[2.0794, 0.6931]]])
    """
    _check_floating(logits, "logits")
    if logits.dim() < 2:
        raise ValueError(
            f"logits must have shape (N, C, d1, ...) with the classes in dim 1, got shape "
            f"{tuple(logits.shape)}"
        )
    _check_integer(target, "target")
    _check_floating(pixel_weight, "pixel_weight")
    _check_reduction(reduction)
    expected = _spatial_shape_of_indices(logits)
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must hold class indices of shape {expected} (the shape of logits "
            f"{tuple(logits.shape)} without dim 1), got {tuple(target.shape)}"
        )
    _check_same_shape(target, pixel_weight, "target", "pixel_weight")
    _check_same_device(
        [logits, target, pixel_weight, weight], ["logits", "target", "pixel_weight", "weight"]
    )
    if _wants_values(validate) and bool((pixel_weight < 0).any()):
        raise ValueError(
            f"pixel_weight must be non-negative, got a minimum of {pixel_weight.min().item():g}"
        )

    loss = cross_entropy(
        _upcast(logits), target, weight, ignore_index, reduction="none", validate=validate
    )
    kept = target != ignore_index
    pixel_weight = pixel_weight.to(loss.dtype)
    # Ignored pixels contribute 0 whatever their weight (even inf or NaN).
    weighted = torch.where(kept, pixel_weight * loss, torch.zeros_like(loss))
    if reduction == "mean":
        norm = torch.where(kept, pixel_weight, torch.zeros_like(pixel_weight))
        return weighted_mean(weighted, norm).to(logits.dtype)
    return _reduce(weighted, reduction).to(logits.dtype)


# --------------------------------------------------------------------------- U-Net weights


def _distance_to(region: torch.Tensor) -> torch.Tensor:
    r"""Exact Euclidean distance of every pixel of ``region`` ``(H, W)`` (bool) to its
    nearest ``True`` pixel, by two brute-force passes (rows, then columns).

    Pass 1: :math:`g(r, c) = \min_{c'} (c - c')^2` over the region's pixels in row
    :math:`r`.  Pass 2: :math:`d^2(r, c) = \min_{r'} (r - r')^2 + g(r', c)`, which is
    the minimum of :math:`(r - r')^2 + (c - c')^2` over every region pixel.  Costs
    :math:`O(HW(H + W))`; blocks keep the memory at :data:`_DISTANCE_BLOCK`.
    """
    height, width = region.shape
    device = region.device
    cols = torch.arange(width, dtype=torch.float32, device=device)
    rows = torch.arange(height, dtype=torch.float32, device=device)
    inf = torch.tensor(float("inf"), device=device)

    col_cost = (cols[:, None] - cols[None, :]) ** 2  # (W, W): [c, c']
    row_block = max(1, _DISTANCE_BLOCK // max(width * width, 1))
    g = torch.empty(height, width, dtype=torch.float32, device=device)
    for start in range(0, height, row_block):
        inside = region[start : start + row_block, None, :]  # (r, 1, W): [r, ., c']
        g[start : start + row_block] = torch.where(inside, col_cost, inf).amin(dim=2)

    row_cost = (rows[:, None] - rows[None, :]) ** 2  # (H, H): [r, r']
    col_block = max(1, _DISTANCE_BLOCK // max(height * height, 1))
    squared = torch.empty(height, width, dtype=torch.float32, device=device)
    for start in range(0, width, col_block):
        block = g[None, :, start : start + col_block]  # (1, H, c): [., r', c]
        squared[:, start : start + col_block] = (row_cost[:, :, None] + block).amin(dim=1)
    return squared.sqrt()


def _weight_map_one(
    labels: torch.Tensor, w0: float, sigma: float, class_weights: tuple[float, float] | None
) -> torch.Tensor:
    """The weight map of one instance-label image ``(H, W)``."""
    foreground = labels > 0
    if labels.numel() == 0:
        return torch.zeros(labels.shape, dtype=torch.float32, device=labels.device)
    if class_weights is None:
        total = labels.numel()
        n_foreground = int(foreground.sum())
        n_background = total - n_foreground
        present = (n_foreground > 0) + (n_background > 0)
        w_foreground = total / (present * n_foreground) if n_foreground else 0.0
        w_background = total / (present * n_background) if n_background else 0.0
    else:
        w_background, w_foreground = class_weights
    weights = torch.where(
        foreground,
        torch.tensor(w_foreground, dtype=torch.float32, device=labels.device),
        torch.tensor(w_background, dtype=torch.float32, device=labels.device),
    )
    instances = torch.unique(labels[foreground])
    if instances.numel() < 2 or w0 == 0.0:
        return weights
    distances = torch.stack([_distance_to(labels == k) for k in instances])  # (K, H, W)
    nearest_two = distances.topk(2, dim=0, largest=False).values  # d1, d2: (2, H, W)
    border = w0 * torch.exp(-((nearest_two[0] + nearest_two[1]) ** 2) / (2.0 * sigma**2))
    return weights + torch.where(foreground, torch.zeros_like(border), border)


def unet_weight_map(
    mask: torch.Tensor,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: Sequence[float] | None = None,
) -> torch.Tensor:
    r"""U-Net's pixel weight map from an instance mask: class balance plus thin borders.

    .. math::

        \omega(x) = w_c(x) + w_0 \exp\!\Bigl(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\Bigr)

    where :math:`d_1(x)` and :math:`d_2(x)` are the Euclidean distances (in pixels)
    from pixel :math:`x` to the nearest pixel of the nearest and of the
    second-nearest instance.  The second term is large in the narrow background
    gaps between touching instances, which forces the network to learn the
    separating borders.  Exactly as computed here:

    * the border term is added on **background** pixels only (``mask == 0``), as
      in the paper's figure 3d: on an instance's own pixels :math:`d_1` would be
      0;  it is 0 everywhere when the image holds fewer than 2 instances;
    * :math:`w_c` balances the classes background/foreground (any instance) of
      *each image*: :math:`w_c(x) = n / (k\, n_{c(x)})`, with :math:`n` the number
      of pixels, :math:`n_c` those of class :math:`c` and :math:`k` the number of
      classes present (1 or 2).  Each present class then carries the same total
      weight and :math:`w_c` averages to 1 over the image (e.g. 20 % foreground:
      :math:`w_c = 2.5` on foreground, :math:`0.625` on background).  The paper
      computes frequencies over the training set: pass ``class_weights`` for that.

    This is preprocessing, run once per training mask (it reads the mask's values
    to find the instances, so it synchronises with the GPU): feed the result to
    :func:`weighted_pixel_cross_entropy`.  The distance transform is exact and
    written in torch (no SciPy), by brute force over rows and columns, one
    instance at a time: :math:`O(K\,HW(H + W))` for :math:`K` instances; it agrees
    with ``scipy.ndimage.distance_transform_edt`` and runs on the mask's device.

    Args:
        mask: instance labels ``(H, W)`` or ``(N, H, W)``, an integer tensor:
            0 for background, any positive integer for an instance (labels need
            not be consecutive).
        w0: weight of the border term, ``>= 0`` (10 in the paper).
        sigma: width of the border term in pixels, ``> 0`` (about 5 in the paper).
        class_weights: ``(w_background, w_foreground)``, non-negative numbers, to
            use instead of the per-image balance.

    Returns:
        The weights, float32, the shape and device of ``mask``.

    Reference: O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks
    for Biomedical Image Segmentation", MICCAI 2015, equation (2).

    Example:
        >>> mask = torch.tensor([[1, 1, 0, 2, 2]])  # two cells, one pixel apart
        >>> unet_weight_map(mask, w0=0.0)  # 4 foreground pixels, 1 background: 5/8, 5/2
        tensor([[0.6250, 0.6250, 2.5000, 0.6250, 0.6250]])
        >>> unet_weight_map(mask, sigma=1.0, class_weights=(1.0, 1.0))  # 1 + 10 exp(-2)
        tensor([[1.0000, 1.0000, 2.3534, 1.0000, 1.0000]])
    """
    _check_tensor(mask, "mask")
    if mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool:
        raise TypeError(
            "mask must be an integer tensor of instance labels (0 = background, 1..K = "
            f"instances), got dtype {mask.dtype}"
        )
    if mask.dim() not in (2, 3):
        raise ValueError(f"mask must have shape (H, W) or (N, H, W), got shape {tuple(mask.shape)}")
    w0 = _check_number(w0, "w0", minimum=0.0)
    sigma = _check_number(sigma, "sigma", minimum=0.0, strict=True)
    if class_weights is not None:
        if (
            isinstance(class_weights, (str, torch.Tensor))
            or not isinstance(class_weights, Sequence)
            or len(class_weights) != 2
        ):
            raise TypeError(
                "class_weights must be a pair (w_background, w_foreground) of numbers, "
                f"got {class_weights!r}"
            )
        class_weights = (
            _check_number(class_weights[0], "class_weights[0]", minimum=0.0),
            _check_number(class_weights[1], "class_weights[1]", minimum=0.0),
        )
    if mask.numel() and bool((mask < 0).any()):
        raise ValueError(
            f"mask must hold labels >= 0 (0 = background), got a minimum of {int(mask.min())}"
        )
    batch = mask if mask.dim() == 3 else mask.unsqueeze(0)
    maps = [_weight_map_one(labels, w0, sigma, class_weights) for labels in batch]
    if maps:
        out = torch.stack(maps)
    else:
        out = torch.zeros(batch.shape, dtype=torch.float32, device=mask.device)
    return out if mask.dim() == 3 else out[0]


# --------------------------------------------------------------------------- Dice


def dice_loss(
    logits_or_probs: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    from_logits: bool = True,
    reduction: str = "mean",
    *,
    validate: bool = False,
) -> torch.Tensor:
    r"""Soft Dice loss: one minus the soft overlap of predicted and true masks.

    For each sample :math:`i` and class (channel) :math:`c`, with probabilities
    :math:`p` and the target mask :math:`g` summed over the spatial positions
    :math:`x`,

    .. math::

        \ell_{i,c} = 1 - \frac{2 \sum_x p_{i,c,x}\, g_{i,c,x} + s}
                              {\sum_x p_{i,c,x} + \sum_x g_{i,c,x} + s}

    with the smoothing constant :math:`s` (``smooth``) in the numerator *and*
    the denominator: a class absent from both the target and the prediction
    scores a Dice of 1 (loss 0) instead of 0/0, and the loss of a small object
    is less abrupt.  Milletari et al. square the terms of the denominator
    (:math:`\sum p^2 + \sum g^2`); the linear form here is the common one
    (Sudre et al. 2017, MONAI, segmentation_models_pytorch) and equals
    :math:`1 - F_1` for hard masks and :math:`s = 0`.  With ``smooth=0`` a 0/0
    (nothing predicted, nothing to find) counts as a perfect match: loss 0,
    gradient 0.

    The input decides the activation and the target format:

    * **multi-class** (softmax over dim 1): ``logits_or_probs`` ``(N, C, d1, ...)``
      with ``C >= 2`` and integer class indices ``(N, d1, ...)``, one-hot encoded;
    * **binary / multi-label** (sigmoid, elementwise): a floating target of the
      shape of ``logits_or_probs`` ``(N, C, d1, ...)`` (each channel an independent
      mask; ``C = 1`` for binary segmentation), or, for ``(N, 1, d1, ...)``
      scores, a floating target ``(N, d1, ...)`` without the channel dim.

    ``from_logits=False`` takes probabilities (no activation) with the same target
    formats.  Every (sample, class) pair is a Dice term, classes absent from the
    target included.

    Args:
        logits_or_probs: scores ``(N, C, d1, ...)`` (``from_logits=True``) or
            probabilities in :math:`[0, 1]`.
        target: class indices ``(N, d1, ...)`` or a floating mask as above
            (values in :math:`[0, 1]`, soft masks allowed).
        smooth: :math:`s \ge 0`.
        from_logits: apply softmax (class indices) or sigmoid (masks) first.
        reduction: ``"none"`` (shape ``(N, C)``: one loss per sample and class) |
            ``"mean"`` (over all ``N * C`` terms) | ``"sum"``.
        validate: also check values (class indices in ``[0, C)``, masks and
            probabilities in ``[0, 1]``); synchronises.

    Returns:
        The loss in the dtype of ``logits_or_probs`` (computed in float32 for half
        precision): ``(N, C)`` for ``"none"``, else a scalar.

    Reference: F. Milletari, N. Navab and S.-A. Ahmadi, "V-Net: Fully Convolutional
    Neural Networks for Volumetric Medical Image Segmentation", 3DV 2016;
    C. H. Sudre et al., "Generalised Dice overlap as a deep learning loss function
    for highly unbalanced segmentations", DLMIA 2017.

    Example:
        >>> probs = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])  # (1, 1, 4)
        >>> mask = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> dice_loss(probs, mask, smooth=0.0, from_logits=False)  # 1 - 2*1/(2+1)
        tensor(0.3333)
        >>> dice_loss(torch.zeros(1, 1, 4), torch.zeros(1, 1, 4), from_logits=False)
        tensor(0.)
    """
    scores = logits_or_probs
    _check_floating(scores, "logits_or_probs")
    _check_tensor(target, "target")
    smooth = _check_number(smooth, "smooth", minimum=0.0)
    _check_bool(from_logits, "from_logits")
    _check_reduction(reduction)
    if scores.dim() < 2:
        raise ValueError(
            f"logits_or_probs must have shape (N, C, d1, ...) with the classes in dim 1, "
            f"got shape {tuple(scores.shape)}"
        )
    _check_same_device([scores, target], ["logits_or_probs", "target"])
    num_classes = scores.shape[1]
    x = _upcast(scores)
    if target.is_floating_point():
        if target.shape == scores.shape:
            mask = target
        elif num_classes == 1 and tuple(target.shape) == _spatial_shape_of_indices(scores):
            mask = target.unsqueeze(1)
        else:
            raise ValueError(
                f"target must be a mask of the shape of logits_or_probs "
                f"{tuple(scores.shape)}"
                + (
                    f" or {_spatial_shape_of_indices(scores)}"
                    if num_classes == 1
                    else f", or class indices {_spatial_shape_of_indices(scores)}"
                )
                + f", got {tuple(target.shape)}"
            )
        _check_probabilities(target, "target", validate)
        probs = torch.sigmoid(x) if from_logits else x
        truth = mask.to(x.dtype)
    else:
        _check_integer(target, "target")
        expected = _spatial_shape_of_indices(scores)
        if tuple(target.shape) != expected:
            raise ValueError(
                f"target must hold class indices of shape {expected} (the shape of "
                f"logits_or_probs {tuple(scores.shape)} without dim 1), got "
                f"{tuple(target.shape)}"
            )
        if num_classes < 2:
            raise ValueError(
                "class-index targets need logits_or_probs with C >= 2 classes in dim 1, got "
                f"C = {num_classes}; for binary segmentation pass a floating mask "
                "(N, 1, ...) or (N, ...) (sigmoid Dice)"
            )
        _check_class_indices(target, num_classes, "target", None, validate)
        probs = torch.softmax(x, dim=1) if from_logits else x
        classes = torch.arange(num_classes, device=target.device)
        classes = classes.view(1, num_classes, *([1] * (scores.dim() - 2)))
        truth = (target.unsqueeze(1) == classes).to(x.dtype)
    if not from_logits:
        _check_probabilities(scores, "logits_or_probs", validate)

    spatial = tuple(range(2, scores.dim()))
    overlap = probs * truth
    if spatial:  # .sum(()) would sum over every dim
        overlap, probs, truth = overlap.sum(spatial), probs.sum(spatial), truth.sum(spatial)
    numerator = 2.0 * overlap + smooth
    denominator = probs + truth + smooth
    # 0/0 (nothing predicted, nothing to find, smooth = 0) is a perfect match, with a
    # zero gradient instead of NaN (the denominator is never negative).
    dice = safe_divide(numerator, denominator, default=1.0)
    return _reduce(1.0 - dice, reduction).to(scores.dtype)


# --------------------------------------------------------------------------- topology


def _expected_in_channels(feature_extractor: object) -> int | None:
    """Input channels of the first convolution of a module, or ``None``."""
    if isinstance(feature_extractor, nn.Module):
        for module in feature_extractor.modules():
            if isinstance(module, nn.modules.conv._ConvNd):
                return module.in_channels
    return None


def topology_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    feature_extractor: Callable[[torch.Tensor], Mapping[str, torch.Tensor]],
    layers: str | Sequence[str],
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Topology-aware loss of Mosinska et al.: perceptual loss between masks.

    .. math::

        \ell_i = \sum_j \frac{\bigl\|\phi_j(\hat y_i) - \phi_j(y_i)\bigr\|_2^2}
                             {C_j H_j W_j}

    where :math:`\phi_j` are the activations of layer :math:`j` of a fixed network
    (VGG19 pretrained on ImageNet in the paper), :math:`\hat y_i` the predicted
    probability map and :math:`y_i` the ground-truth mask of sample :math:`i`:
    the sum over layers of each layer's mean squared difference.  Deep features
    respond to lines, junctions and gaps, so a prediction with a broken or
    spurious connection (a wrong *topology*, which a pixel loss barely sees) is
    penalised.  The paper writes the penalty as a sum of squared differences over
    the feature maps of the chosen layers; the per-layer mean here differs by a
    constant per layer, and is :func:`cvloss_ref.perceptual_loss` with unit
    weights.  It is added to a pixel loss: :math:`\mathcal{L}_{bce} + \mu\,
    \mathcal{L}_{top}` (the paper uses :math:`\mu = 0.1`).

    Masks are single-channel: ``(N, 1, H, W)`` or ``(N, H, W)`` (a channel dim
    is added).  When ``feature_extractor`` is an ``nn.Module`` whose first
    convolution takes 3 channels (VGG), single-channel masks are repeated to 3
    channels; other extractors get the masks as they are.  The ground truth is a
    constant: its features are computed under ``torch.no_grad()``.

    Args:
        pred: predicted probabilities ``(N, 1, H, W)``, ``(N, C, H, W)`` or
            ``(N, H, W)``, floating point.
        target: ground-truth masks, the same shape and device, floating point.
        feature_extractor: a :class:`cvloss_ref.FeatureExtractor` or any callable
            returning a mapping from layer names to feature maps.
        layers: the names of the features to compare.
        reduction: ``"none"`` (one value per sample, ``(N,)``) | ``"mean"`` (over
            samples: the sum over layers of each layer's MSE) | ``"sum"``.

    Returns:
        The loss in the dtype of ``pred`` (computed in float32 for half precision):
        ``(N,)`` for ``"none"``, else a scalar.

    Reference: A. Mosinska, P. Marquez-Neila, M. Koziński and P. Fua, "Beyond the
    Pixel-Wise Loss for Topology-Aware Delineation", CVPR 2018, equation (3).

    Example:
        >>> from cvloss_ref.synthesis import FeatureExtractor
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        >>> net = net.requires_grad_(False)
        >>> extractor = FeatureExtractor(net, ["1", "2"])  # expects 3 channels
        >>> mask = torch.zeros(2, 1, 8, 8)
        >>> mask[:, :, 4, :] = 1.0  # a horizontal line
        >>> topology_loss(mask, mask, extractor, ["1", "2"], reduction="none")
        tensor([0., 0.])
    """
    _check_floating(pred, "pred")
    _check_floating(target, "target")
    _check_same_shape(pred, target, "pred", "target")
    _check_same_device([pred, target], ["pred", "target"])
    _check_reduction(reduction)
    if pred.dim() not in (3, 4):
        raise ValueError(
            f"pred must have shape (N, 1, H, W) or (N, H, W), got shape {tuple(pred.shape)}"
        )
    layers = _check_layers(layers)
    _check_extractor(feature_extractor)
    pred_masks = pred.unsqueeze(1) if pred.dim() == 3 else pred
    target_masks = target.unsqueeze(1) if target.dim() == 3 else target
    if pred_masks.shape[1] == 1 and _expected_in_channels(feature_extractor) == 3:
        pred_masks = pred_masks.repeat(1, 3, 1, 1)
        target_masks = target_masks.repeat(1, 3, 1, 1)
    pred_features = _extract(feature_extractor, pred_masks, layers, "pred")
    # The ground truth is a constant of the loss: no graph for its features.
    with torch.no_grad():
        target_features = _extract(feature_extractor, target_masks, layers, "target")
    loss = _per_sample_feature_mse(pred_features, target_features, layers, [1.0] * len(layers))
    return _reduce(loss, reduction).to(pred.dtype)
