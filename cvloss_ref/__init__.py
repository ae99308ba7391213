"""Reference PyTorch implementations of computer-vision losses.

Every public function follows the conventions of ``torch.nn.functional``
(``reduction="none" | "mean" | "sum"``, default ``"mean"``), runs on any device
and dtype without host synchronisation, and is the reference that
:func:`cvloss_ref.testing.assert_loss_matches` checks students against.
"""

from ._validation import debug_enabled, set_debug
from .information import (
    self_information,
    entropy,
    cross_entropy_dist,
    kl_divergence,
    js_divergence,
)
from .classification import (
    cross_entropy,
    smooth_labels,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    sigmoid_focal_loss,
    softmax_focal_loss,
    hinge_loss,
    multiclass_hinge_loss,
    hinge_embedding_loss,
)
from .regression import (
    mean_error,
    mse_loss,
    l1_loss,
    rmse_loss,
    smooth_l1_loss,
    huber_loss,
)
from .boxes import (
    box_convert,
    box_area,
    box_iou,
    generalized_box_iou,
    iou_loss,
    giou_loss,
    diou_loss,
    ciou_loss,
    eiou_loss,
    focal_eiou_loss,
    alpha_iou_loss,
    riou_loss,
    diou_nms,
)

__version__ = "0.1.0"

__all__ = [
    "self_information",
    "entropy",
    "cross_entropy_dist",
    "kl_divergence",
    "js_divergence",
    "cross_entropy",
    "smooth_labels",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "hinge_loss",
    "multiclass_hinge_loss",
    "hinge_embedding_loss",
    "mean_error",
    "mse_loss",
    "l1_loss",
    "rmse_loss",
    "smooth_l1_loss",
    "huber_loss",
    "box_convert",
    "box_area",
    "box_iou",
    "generalized_box_iou",
    "iou_loss",
    "giou_loss",
    "diou_loss",
    "ciou_loss",
    "eiou_loss",
    "focal_eiou_loss",
    "alpha_iou_loss",
    "riou_loss",
    "diou_nms",
    "set_debug",
    "debug_enabled",
]
