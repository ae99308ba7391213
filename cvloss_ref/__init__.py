"""Reference PyTorch implementations of computer-vision losses.

Every public function follows the conventions of ``torch.nn.functional``
(``reduction="none" | "mean" | "sum"``, default ``"mean"``), runs on any device
and dtype without host synchronisation, and is the reference that
:func:`cvloss_ref.testing.assert_loss_matches` checks students against.
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
