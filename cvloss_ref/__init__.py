"""Reference PyTorch implementations of computer-vision losses.

**Reduction.**  Every loss follows the conventions of ``torch.nn.functional``: it
takes ``reduction="none" | "mean" | "sum"`` (default ``"mean"``), where ``"none"``
gives one value per sample (per element, box, pixel, pair, triplet, anchor or image:
each docstring says which), ``"sum"`` adds those values and ``"mean"`` averages
them.  A ``"mean"`` over nothing (an empty batch, every target ignored, no valid
triplet or anchor) is 0 with a zero gradient, not NaN.  Where ``"mean"`` has a
denominator of its own, the docstring names it: the summed class or pixel weights
and the targets not ignored (``cross_entropy``, ``softmax_focal_loss``,
``weighted_pixel_cross_entropy``); the triplets or anchors that count
(``batch_all_triplet_loss``, ``batch_hard_triplet_loss``, ``circle_loss``); and
for the losses of two unpaired populations (``gan_discriminator_loss``: real and
fake samples; ``cycle_consistency_loss``: domains A and B, which may differ in
batch size and shape) the mean of each population, added, while ``"none"`` returns
the values of the first population followed by those of the second.
``rmse_loss`` takes its root after the reduction, so its ``"sum"`` is the norm of
the residual, not the sum of ``"none"``.  Functions that are not losses
(``box_area``, ``box_convert``, ``box_iou``, ``generalized_box_iou``,
``pairwise_distances``, ``gram_matrix``, ``smooth_labels``, ``self_information``,
``unet_weight_map``) take no ``reduction=`` and return their values unreduced;
``diou_nms`` and ``mine_triplets`` return indices.  Every function runs on any
device and dtype without host synchronisation, and is the reference that
:func:`cvloss_ref.testing.assert_loss_matches` checks students against.

**Argument names.**  The names and their order are a contract (exercise notebooks
and the grader call the functions with them), so they are never renamed; they
follow one rule: the first argument is named for what it holds.

* ``logits``: real-valued class scores before a sigmoid or softmax, one per class
  (the classification and dense cross-entropy and focal losses,
  ``multiclass_hinge_loss``); ``real_logits``/``fake_logits``: a discriminator's raw
  outputs on real and generated samples.
* ``probs``: probabilities in [0, 1]; ``logits_or_probs`` where ``from_logits=``
  says which (``dice_loss``).
* ``p``, ``q``: probability distributions along ``dim`` (information theory).
* ``input``: where the loss mirrors the ``torch.nn.functional`` loss of the same
  name, whose first argument is ``input`` (``mse_loss``, ``l1_loss``,
  ``smooth_l1_loss``, ``huber_loss``, ``hinge_embedding_loss``), and the other
  regression losses beside them (``mean_error``, ``rmse_loss``).  ``input`` is
  never used for logits or probabilities, which have their own names.
* ``scores``: the one real-valued decision value per sample of a binary margin
  classifier with targets ±1 (``hinge_loss``); in ``diou_nms``, detection
  confidences.
* ``pred``: a prediction in the space of its target (boxes, images, masks), and
  ``pred_feats`` feature maps of the prediction, compared with ``style_feats`` or
  ``content_feats``.
* ``embeddings``: the rows of one batch, compared with one another through their
  ``labels``; ``x1``/``x2`` and ``anchor``/``positive``/``negative``: embeddings
  named by their role in a pair or a triplet.
* ``critic``, ``real``, ``fake`` (``gradient_penalty``) and ``real_a``, ``rec_a``,
  ``real_b``, ``rec_b`` (``cycle_consistency_loss``): named by their role.
* Functions that are not losses are named for their input: ``boxes``/``boxes1``,
  ``features``, ``images``, ``mask``, ``target`` (``smooth_labels``).

The ground truth that a prediction (``logits``, ``probs``, ``logits_or_probs``,
``input``, ``scores``, ``pred``) is compared with is always the second argument,
``target``.  ``tests/test_api_shape.py`` checks every public function against
these rules.
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
