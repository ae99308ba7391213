"""Reference PyTorch implementations of computer-vision losses.

Every loss follows the conventions of ``torch.nn.functional``: it takes
``reduction="none" | "mean" | "sum"`` (default ``"mean"``), where ``"none"`` gives one
value per sample (per element, box, pixel, pair, anchor or image: each docstring
says which) and a ``"mean"`` over nothing (an empty batch, every target ignored, no
valid triplet) is 0 with a zero gradient, not NaN.  (``cycle_consistency_loss``,
whose two domains need not be paired or of one size, returns the scalar of its
formula.)  Functions that are not losses
(``box_area``, ``box_iou``, ``pairwise_distances``, ``gram_matrix``,
``smooth_labels``, ``self_information``, ...) return their values unreduced.  Every
function runs on any device and dtype without host synchronisation, and is the
reference that :func:`cvloss_ref.testing.assert_loss_matches` checks students
against.

Argument names say what a tensor holds.  The first argument of a loss is the
model's output, named for its kind: ``logits`` (real-valued scores before a sigmoid
or softmax), ``probs`` (probabilities), ``embeddings`` (rows of a batch compared with
one another) or ``pred`` (a prediction in the space of its target: boxes, values,
masks, features); the ground truth is ``target``.  Losses that compare inputs of
equal standing name them for their role (``p``/``q`` distributions, ``x1``/``x2``
and ``anchor``/``positive``/``negative`` embeddings, ``real_logits``/``fake_logits``).
A few names predate the rule and follow ``torch.nn.functional`` instead (``input``
of the regression losses, ``scores`` of ``hinge_loss``); they stay until a release
renames them with a deprecation warning.
"""

from ._compile import compile_mode, set_compile
from ._validation import debug_enabled, set_debug
from .adversarial import (
    cycle_consistency_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    gradient_penalty,
)
from .boxes import (
    alpha_iou_loss,
    box_area,
    box_convert,
    box_iou,
    ciou_loss,
    diou_loss,
    diou_nms,
    eiou_loss,
    focal_eiou_loss,
    generalized_box_iou,
    giou_loss,
    iou_loss,
    riou_loss,
)
from .classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    hinge_embedding_loss,
    hinge_loss,
    multiclass_hinge_loss,
    sigmoid_focal_loss,
    smooth_labels,
    softmax_focal_loss,
)
from .dense import (
    dice_loss,
    topology_loss,
    unet_weight_map,
    weighted_pixel_cross_entropy,
)
from .information import (
    cross_entropy_dist,
    entropy,
    js_divergence,
    kl_divergence,
    self_information,
)
from .metric import (
    batch_all_triplet_loss,
    batch_hard_triplet_loss,
    circle_loss,
    contrastive_loss,
    mine_triplets,
    pairwise_distances,
    triplet_margin_loss,
)
from .regression import (
    huber_loss,
    l1_loss,
    mean_error,
    mse_loss,
    rmse_loss,
    smooth_l1_loss,
)
from .synthesis import (
    FeatureExtractor,
    content_loss,
    gram_matrix,
    perceptual_loss,
    style_loss,
    total_variation,
    vgg16_features,
)

__version__ = "0.1.0"

__all__ = [
    "FeatureExtractor",
    "alpha_iou_loss",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "box_area",
    "box_convert",
    "box_iou",
    "ciou_loss",
    "circle_loss",
    "compile_mode",
    "content_loss",
    "contrastive_loss",
    "cross_entropy",
    "cross_entropy_dist",
    "cycle_consistency_loss",
    "debug_enabled",
    "dice_loss",
    "diou_loss",
    "diou_nms",
    "eiou_loss",
    "entropy",
    "focal_eiou_loss",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "generalized_box_iou",
    "giou_loss",
    "gradient_penalty",
    "gram_matrix",
    "hinge_embedding_loss",
    "hinge_loss",
    "huber_loss",
    "iou_loss",
    "js_divergence",
    "kl_divergence",
    "l1_loss",
    "mean_error",
    "mine_triplets",
    "mse_loss",
    "multiclass_hinge_loss",
    "pairwise_distances",
    "perceptual_loss",
    "riou_loss",
    "rmse_loss",
    "self_information",
    "set_compile",
    "set_debug",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "smooth_labels",
    "softmax_focal_loss",
    "style_loss",
    "topology_loss",
    "total_variation",
    "triplet_margin_loss",
    "unet_weight_map",
    "vgg16_features",
    "weighted_pixel_cross_entropy",
]
