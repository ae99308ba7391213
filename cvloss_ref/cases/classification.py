"""Catalogue cases for the classification losses.

Every ``make(generator, dtype)`` builds small CPU tensors: floating inputs in
``dtype``, class indices as ``torch.long``.  The mistakes below are written by hand
as a student might write them; each is wrong on at least one case of its loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._catalogue import Case, LossSpec, Mistake, register

NO_GRAD_DTYPES = (torch.float32,)


# ------------------------------------------------------------------------- helpers


def _randn(g: torch.Generator, dtype: torch.dtype, *shape: int, scale: float = 2.0):
    return scale * torch.randn(*shape, generator=g, dtype=dtype)


def _rand(g: torch.Generator, dtype: torch.dtype, *shape: int):
    return torch.rand(*shape, generator=g, dtype=dtype)


def _randint(g: torch.Generator, high: int, *shape: int):
    return torch.randint(high, shape, generator=g)


def _signs(g: torch.Generator, *shape: int):
    return _randint(g, 2, *shape) * 2 - 1


def _saturated_logits(dtype: torch.dtype):
    """Rows with one logit at +1e4 and one at -1e4; targets hit both."""
    logits = torch.tensor(
        [[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, -1e4, 1e4], [1e4, 0.0, -1e4]], dtype=dtype
    )
    return logits, torch.tensor([0, 0, 1, 2])


def _half_up(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


# -------------------------------------------------------------------- cross_entropy


def _ce_random(g, dtype):
    return (_randn(g, dtype, 8, 5), _randint(g, 5, 8)), {}


def _ce_segmentation(g, dtype):
    return (_randn(g, dtype, 2, 4, 3, 3), _randint(g, 4, 2, 3, 3)), {"reduction": "none"}


def _ce_saturated(g, dtype):
    return _saturated_logits(dtype), {}


def _ce_ignore(g, dtype):
    target = _randint(g, 4, 2, 3, 3)
    target[0, 0] = -100
    target[1, :, 2] = -100
    return (_randn(g, dtype, 2, 4, 3, 3), target), {}


def _ce_all_ignored(g, dtype):
    return (_randn(g, dtype, 3, 4), torch.full((3,), -100)), {}


def _ce_weights(g, dtype):
    weight = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=dtype)
    return (_randn(g, dtype, 6, 4), torch.tensor([0, 2, 2, 3, 1, 2])), {"weight": weight}


def _ce_weights_in_range_ignore_sum(g, dtype):
    weight = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=dtype)
    target = torch.tensor([0, 1, 2, 3, 1, 2])
    kwargs = {"weight": weight, "ignore_index": 1, "reduction": "sum"}
    return (_randn(g, dtype, 6, 4), target), kwargs


def _ce_smoothing_weights_ignore(g, dtype):
    weight = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=dtype)
    target = _randint(g, 4, 2, 3)
    target[0, 1] = -100
    kwargs = {"weight": weight, "label_smoothing": 0.2}
    return (_randn(g, dtype, 2, 4, 3), target), kwargs


def _ce_probabilities(g, dtype):
    target = torch.softmax(_randn(g, dtype, 5, 4), dim=1)
    return (_randn(g, dtype, 5, 4), target), {"label_smoothing": 0.1}


def _ce_unbatched(g, dtype):
    return (_randn(g, dtype, 5), torch.tensor(3)), {}


def _ce_empty(g, dtype):
    return (torch.zeros(0, 5, dtype=dtype), torch.zeros(0, dtype=torch.long)), {}


def _ce_exact_fit(g, dtype):
    target = _randint(g, 5, 6)
    logits = 40.0 * F.one_hot(target, 5).to(dtype)
    return (logits, target), {}


def _textbook_cross_entropy(
    logits,
    target,
    weight=None,
    ignore_index=-100,
    label_smoothing=0.0,
    reduction="mean",
    *,
    mistake: str,
):
    """A direct implementation as a student writes it, with one named mistake:
    the loss is -sum_c w_c q_c log p_c with q the (smoothed) target distribution."""
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.shape[class_dim]
    x = _half_up(logits)
    if mistake == "log_of_softmax":
        log_probs = torch.log(torch.softmax(x, class_dim))
    else:
        log_probs = torch.log_softmax(x, class_dim)
    view = [1] * x.dim()
    view[class_dim] = num_classes
    w = (
        torch.ones(num_classes, dtype=x.dtype, device=x.device)
        if weight is None
        else weight.to(x.dtype)
    )
    w = w.view(view)
    eps = label_smoothing
    if target.shape == logits.shape:  # class probabilities
        q = target.to(x.dtype) * (1 - eps) + eps / num_classes
        loss = -(w * q * log_probs).sum(class_dim)
        denominator = torch.tensor(float(loss.numel()), dtype=x.dtype)
    else:
        kept = target != ignore_index
        safe = torch.where(kept, target, torch.zeros_like(target))
        classes = torch.arange(num_classes, device=x.device).view(view)
        one_hot = (classes == safe.unsqueeze(class_dim)).to(x.dtype)
        if mistake == "smoothing_over_others":
            q = one_hot * (1 - eps) + (1 - one_hot) * eps / (num_classes - 1)
        else:
            q = one_hot * (1 - eps) + eps / num_classes
        loss = torch.where(kept, -(w * q * log_probs).sum(class_dim), 0.0)
        target_weight = (w * one_hot).sum(class_dim) * kept
        if mistake == "mean_over_all_elements":
            denominator = torch.tensor(float(loss.numel()), dtype=x.dtype)
        elif mistake == "weights_normalised_by_count":
            denominator = kept.sum().to(x.dtype)
        else:
            denominator = target_weight.sum()
    if reduction == "none":
        out = loss
    elif reduction == "sum" or mistake == "sum_instead_of_mean":
        out = loss.sum()
    else:
        out = loss.sum() / denominator
    return out.to(logits.dtype)


def _ce_log_of_softmax(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    return _textbook_cross_entropy(
        logits, target, weight, ignore_index, label_smoothing, reduction, mistake="log_of_softmax"
    )


def _ce_mean_over_all_elements(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    return _textbook_cross_entropy(
        logits,
        target,
        weight,
        ignore_index,
        label_smoothing,
        reduction,
        mistake="mean_over_all_elements",
    )


def _ce_weights_normalised_by_count(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    return _textbook_cross_entropy(
        logits,
        target,
        weight,
        ignore_index,
        label_smoothing,
        reduction,
        mistake="weights_normalised_by_count",
    )


def _ce_smoothing_over_others(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    return _textbook_cross_entropy(
        logits,
        target,
        weight,
        ignore_index,
        label_smoothing,
        reduction,
        mistake="smoothing_over_others",
    )


def _ce_sum_instead_of_mean(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    return _textbook_cross_entropy(
        logits,
        target,
        weight,
        ignore_index,
        label_smoothing,
        reduction,
        mistake="sum_instead_of_mean",
    )


register(
    LossSpec(
        name="cross_entropy",
        cases=(
            Case("random logits (N, C)", _ce_random),
            Case(
                "segmentation logits (N, C, H, W), reduction='none'",
                _ce_segmentation,
                note="one loss per pixel, shape (N, H, W)",
            ),
            Case(
                "saturated logits (±1e4)",
                _ce_saturated,
                note="a probability of exp(-2e4) underflows to 0: log-softmax must not",
            ),
            Case(
                "ignore_index present",
                _ce_ignore,
                note="ignored pixels are left out of the mean's denominator",
            ),
            Case(
                "all targets ignored",
                _ce_all_ignored,
                note="the mean over no target is 0 here (F.cross_entropy gives NaN)",
            ),
            Case(
                "class weights",
                _ce_weights,
                note="with weights, 'mean' divides by the sum of w[y_i]",
            ),
            Case(
                "class weights, in-range ignore_index, reduction='sum'",
                _ce_weights_in_range_ignore_sum,
            ),
            Case(
                "label smoothing with class weights and ignore_index",
                _ce_smoothing_weights_ignore,
                note="PyTorch divides the smoothing term by the same sum of w[y_i]",
            ),
            Case(
                "class probabilities as target, with label smoothing",
                _ce_probabilities,
                note="probability targets: 'mean' divides by the number of samples",
            ),
            Case("unbatched logits (C,)", _ce_unbatched),
            Case("empty batch", _ce_empty, note="the mean over no sample is 0, not NaN"),
            Case("exact fit (confident and correct)", _ce_exact_fit),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _ce_log_of_softmax,
                "log(softmax(x)) underflows: a probability of exp(-2e4) is 0 and its log "
                "is -inf. Compute log-probabilities as x - logsumexp(x) "
                "(torch.log_softmax), the log-sum-exp trick.",
            ),
            Mistake(
                _ce_mean_over_all_elements,
                "With 'mean', targets equal to ignore_index must be left out of the "
                "denominator as well as the numerator: divide by the number (or total "
                "weight) of the targets that count, not by all elements.",
            ),
            Mistake(
                _ce_weights_normalised_by_count,
                "With class weights, 'mean' divides the weighted sum by the sum of the "
                "weights of the targets, sum_i w[y_i], as F.cross_entropy does, not by "
                "the number of samples.",
            ),
            Mistake(
                _ce_smoothing_over_others,
                "PyTorch's label_smoothing spreads epsilon over all C classes (epsilon/C "
                "each, the true class included), not epsilon/(C-1) over the others.",
            ),
            Mistake(
                _ce_sum_instead_of_mean,
                "reduction='mean' must divide the summed loss by the number of targets "
                "(their total weight); you return the sum.",
            ),
        ),
    )
)


# -------------------------------------------------------------------- smooth_labels


def _sl_batch(g, dtype):
    return (_randint(g, 5, 6),), {"num_classes": 5, "epsilon": 0.1}


def _sl_segmentation(g, dtype):
    return (_randint(g, 3, 2, 4, 4),), {"num_classes": 3, "epsilon": 0.2}


def _sl_scalar(g, dtype):
    return (torch.tensor(2),), {"num_classes": 4, "epsilon": 0.1}


def _sl_others(g, dtype):
    return (_randint(g, 3, 5),), {"num_classes": 3, "epsilon": 0.1, "spread": "others"}


def _sl_two_classes_others(g, dtype):
    return (_randint(g, 2, 5),), {"num_classes": 2, "epsilon": 0.2, "spread": "others"}


def _sl_zero_epsilon(g, dtype):
    return (_randint(g, 4, 5),), {"num_classes": 4, "epsilon": 0.0}


def _sl_full_epsilon(g, dtype):
    return (_randint(g, 4, 5),), {"num_classes": 4, "epsilon": 1.0}


def _sl_empty(g, dtype):
    return (torch.zeros(0, dtype=torch.long),), {"num_classes": 3}


def _sl_one_hot(target, num_classes):
    one_hot = F.one_hot(target, num_classes).float()
    return one_hot.movedim(-1, 1) if target.dim() >= 2 else one_hot


def _sl_always_others(target, num_classes, epsilon=0.1, spread="all"):
    one_hot = _sl_one_hot(target, num_classes)
    return one_hot * (1 - epsilon) + (1 - one_hot) * epsilon / (num_classes - 1)


def _sl_only_others_get_epsilon(target, num_classes, epsilon=0.1, spread="all"):
    one_hot = _sl_one_hot(target, num_classes)
    if spread == "others":
        return one_hot * (1 - epsilon) + (1 - one_hot) * epsilon / (num_classes - 1)
    return one_hot * (1 - epsilon) + (1 - one_hot) * epsilon / num_classes


def _sl_classes_last(target, num_classes, epsilon=0.1, spread="all"):
    one_hot = F.one_hot(target, num_classes).float()
    if spread == "others":
        return one_hot * (1 - epsilon) + (1 - one_hot) * epsilon / (num_classes - 1)
    return one_hot * (1 - epsilon) + epsilon / num_classes


def _sl_no_subtraction(target, num_classes, epsilon=0.1, spread="all"):
    one_hot = _sl_one_hot(target, num_classes)
    if spread == "others":
        return one_hot + (1 - one_hot) * epsilon / (num_classes - 1)
    return one_hot + epsilon / num_classes


register(
    LossSpec(
        name="smooth_labels",
        cases=(
            Case("batch of indices (N,)", _sl_batch, grad="none", dtypes=NO_GRAD_DTYPES),
            Case(
                "segmentation indices (N, H, W)",
                _sl_segmentation,
                grad="none",
                dtypes=NO_GRAD_DTYPES,
                note="the classes go in dim 1: (N, K, H, W)",
            ),
            Case("single index ()", _sl_scalar, grad="none", dtypes=NO_GRAD_DTYPES),
            Case(
                "spread='others' (the seed article's convention)",
                _sl_others,
                grad="none",
                dtypes=NO_GRAD_DTYPES,
            ),
            Case(
                "two classes, spread='others'",
                _sl_two_classes_others,
                grad="none",
                dtypes=NO_GRAD_DTYPES,
            ),
            Case("epsilon=0 (one-hot)", _sl_zero_epsilon, grad="none", dtypes=NO_GRAD_DTYPES),
            Case("epsilon=1 (uniform)", _sl_full_epsilon, grad="none", dtypes=NO_GRAD_DTYPES),
            Case("empty batch", _sl_empty, grad="none", dtypes=NO_GRAD_DTYPES),
        ),
        grad_inputs=(),
        mistakes=(
            Mistake(
                _sl_always_others,
                "spread='all' (PyTorch's convention) gives every class epsilon/K, the "
                "true one included: (1 - eps) * onehot + eps / K. epsilon/(K-1) on the "
                "other classes is spread='others'.",
            ),
            Mistake(
                _sl_only_others_get_epsilon,
                "With spread='all' the true class also gets its share epsilon/K, so that "
                "each row sums to 1: (1 - eps) * onehot + eps / K.",
            ),
            Mistake(
                _sl_classes_last,
                "For targets (N, H, W) the class dimension goes in dim 1, (N, K, H, W), "
                "where cross_entropy expects it: F.one_hot puts it last; use movedim.",
            ),
            Mistake(
                _sl_no_subtraction,
                "Label smoothing moves probability mass: the true class loses epsilon "
                "(times (1 - eps)); adding eps/K to a one-hot gives rows that sum to "
                "more than 1.",
            ),
        ),
    )
)


# ------------------------------------------------------------- binary_cross_entropy


def _bce_random(g, dtype):
    probs = _rand(g, dtype, 8).clamp(0.02, 0.98)
    return (probs, _randint(g, 2, 8).to(dtype)), {}


def _bce_dense(g, dtype):
    probs = _rand(g, dtype, 2, 3, 2, 2).clamp(0.02, 0.98)
    return (probs, _randint(g, 2, 2, 3, 2, 2).to(dtype)), {}


def _bce_exact_zero_one(g, dtype):
    probs = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0], dtype=dtype)
    target = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.3, 0.6], dtype=dtype)
    return (probs, target), {}


def _bce_soft(g, dtype):
    probs = _rand(g, dtype, 4, 3).clamp(0.02, 0.98)
    return (probs, _rand(g, dtype, 4, 3)), {}


def _bce_weights(g, dtype):
    probs = _rand(g, dtype, 4, 3).clamp(0.02, 0.98)
    weight = torch.tensor([0.5, 2.0, 1.0], dtype=dtype)
    return (probs, _randint(g, 2, 4, 3).to(dtype)), {"weight": weight}


def _bce_sum(g, dtype):
    probs = _rand(g, dtype, 6).clamp(0.02, 0.98)
    return (probs, _randint(g, 2, 6).to(dtype)), {"reduction": "sum"}


def _bce_none(g, dtype):
    probs = _rand(g, dtype, 3, 4).clamp(0.02, 0.98)
    return (probs, _randint(g, 2, 3, 4).to(dtype)), {"reduction": "none"}


def _bce_near_fit(g, dtype):
    target = _randint(g, 2, 6).to(dtype)
    return ((1e-6 + (1 - 2e-6) * target), target), {}


def _bce_empty(g, dtype):
    return (torch.zeros(0, dtype=dtype), torch.zeros(0, dtype=dtype)), {}


def _bce_no_clamp(probs, target, weight=None, reduction="mean"):
    loss = -(target * torch.log(probs) + (1 - target) * torch.log(1 - probs))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bce_clamp_probs(probs, target, weight=None, reduction="mean"):
    p = probs.clamp(1e-7, 1 - 1e-7)
    loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bce_weight_on_positives(probs, target, weight=None, reduction="mean"):
    log_p = torch.log(probs).clamp_min(-100)
    log_1mp = torch.log(1 - probs).clamp_min(-100)
    w = 1.0 if weight is None else weight
    loss = -(w * target * log_p + (1 - target) * log_1mp)
    return _reduce(loss, reduction)


def _bce_sum_instead_of_mean(probs, target, weight=None, reduction="mean"):
    log_p = torch.log(probs).clamp_min(-100)
    log_1mp = torch.log(1 - probs).clamp_min(-100)
    loss = -(target * log_p + (1 - target) * log_1mp)
    if weight is not None:
        loss = loss * weight
    return loss if reduction == "none" else loss.sum()


register(
    LossSpec(
        name="binary_cross_entropy",
        cases=(
            Case("random probabilities (N,)", _bce_random),
            Case("multi-label probabilities (N, C, H, W)", _bce_dense),
            Case(
                "probabilities exactly 0 and 1",
                _bce_exact_zero_one,
                grad="finite",
                note="PyTorch clamps each log at -100, so log(0) costs 100, 0 * log(0) is 0",
            ),
            Case("soft targets", _bce_soft),
            Case("element weights broadcast over the batch", _bce_weights),
            Case("reduction='sum'", _bce_sum),
            Case("reduction='none'", _bce_none),
            Case("nearly exact fit (probabilities 1e-6 from the targets)", _bce_near_fit),
            Case("empty batch", _bce_empty, note="the mean over no element is 0, not NaN"),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _bce_no_clamp,
                "At a probability of exactly 0 or 1, log gives -inf and 0 * (-inf) is NaN. "
                "F.binary_cross_entropy clamps each log at -100: use "
                "torch.log(p).clamp_min(-100) and torch.log1p(-p).clamp_min(-100).",
            ),
            Mistake(
                _bce_clamp_probs,
                "Clamping the probabilities to [eps, 1 - eps] gives the wrong loss at 0 and "
                "1 (-log(1e-7) = 16.1, not 100): clamp the logs at -100 instead.",
            ),
            Mistake(
                _bce_weight_on_positives,
                "weight rescales the whole loss of each element, the negative term "
                "(1 - y) log(1 - p) as well as the positive one.",
            ),
            Mistake(
                _bce_sum_instead_of_mean,
                "reduction='mean' divides the summed loss by the number of elements; you "
                "return the sum.",
            ),
        ),
    )
)


# ------------------------------------------------- binary_cross_entropy_with_logits


def _bcel_random(g, dtype):
    return (_randn(g, dtype, 8), _randint(g, 2, 8).to(dtype)), {}


def _bcel_pos_weight(g, dtype):
    pos_weight = torch.tensor([1.0, 3.0, 0.5, 2.0], dtype=dtype)
    return (_randn(g, dtype, 5, 4), _randint(g, 2, 5, 4).to(dtype)), {"pos_weight": pos_weight}


def _bcel_dense(g, dtype):
    logits = _randn(g, dtype, 2, 3, 2, 2)
    return (logits, _randint(g, 2, 2, 3, 2, 2).to(dtype)), {"reduction": "none"}


def _bcel_saturated(g, dtype):
    logits = torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    return (logits, torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)), {}


def _bcel_huge(g, dtype):
    logits = torch.tensor([1e30, -1e30, 1e30, -1e30], dtype=dtype)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    return (logits, target), {"reduction": "none"}


def _bcel_zero(g, dtype):
    logits = torch.zeros(4, dtype=dtype)
    return (logits, torch.tensor([0.0, 1.0, 0.25, 1.0], dtype=dtype)), {}


def _bcel_soft_weighted(g, dtype):
    weight = _rand(g, dtype, 4, 3) + 0.5
    return (_randn(g, dtype, 4, 3), _rand(g, dtype, 4, 3)), {"weight": weight}


def _bcel_sum_pos_weight(g, dtype):
    pos_weight = torch.tensor([2.0, 0.5, 4.0], dtype=dtype)
    kwargs = {"pos_weight": pos_weight, "reduction": "sum"}
    return (_randn(g, dtype, 4, 3), _randint(g, 2, 4, 3).to(dtype)), kwargs


def _bcel_empty(g, dtype):
    return (torch.zeros(0, 3, dtype=dtype), torch.zeros(0, 3, dtype=dtype)), {}


def _bcel_sigmoid_then_log(logits, target, weight=None, pos_weight=None, reduction="mean"):
    p = torch.sigmoid(logits)
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * target * torch.log(p) + (1 - target) * torch.log(1 - p))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bcel_max_abs_formula(logits, target, weight=None, pos_weight=None, reduction="mean"):
    # (1 - y) x + (1 + (pw - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)): right value,
    # wrong subgradients of max and abs at x = 0.
    log_weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
    softplus_neg = torch.log1p(torch.exp(-logits.abs())) + torch.clamp_min(-logits, 0)
    loss = (1 - target) * logits + log_weight * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bcel_pos_weight_on_negatives(logits, target, weight=None, pos_weight=None, reduction="mean"):
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(target * F.logsigmoid(logits) + pw * (1 - target) * F.logsigmoid(-logits))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _bcel_sum_instead_of_mean(logits, target, weight=None, pos_weight=None, reduction="mean"):
    pw = 1.0 if pos_weight is None else pos_weight
    loss = -(pw * target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits))
    if weight is not None:
        loss = loss * weight
    return loss if reduction == "none" else loss.sum()


register(
    LossSpec(
        name="binary_cross_entropy_with_logits",
        cases=(
            Case("random logits (N,)", _bcel_random),
            Case(
                "multi-label logits (N, C) with pos_weight (C,)",
                _bcel_pos_weight,
                note="pos_weight multiplies the positive term, per class (last dimension)",
            ),
            Case("dense logits (N, C, H, W), reduction='none'", _bcel_dense),
            Case(
                "saturated logits (±1e4)",
                _bcel_saturated,
                note="sigmoid(±1e4) is exactly 0 or 1: work with logsigmoid, not log(sigmoid)",
            ),
            Case("huge logits (±1e30)", _bcel_huge),
            Case(
                "logits exactly 0",
                _bcel_zero,
                note="the loss is smooth at 0: the gradient is sigmoid(0) - y = 0.5 - y",
            ),
            Case("soft targets with element weights", _bcel_soft_weighted),
            Case("reduction='sum' with pos_weight", _bcel_sum_pos_weight),
            Case("empty batch", _bcel_empty, note="the mean over no element is 0, not NaN"),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _bcel_sigmoid_then_log,
                "sigmoid(x) rounds to exactly 0 or 1 for large |x| and its log is -inf: "
                "use log(sigmoid(x)) = F.logsigmoid(x) and log(1 - sigmoid(x)) = "
                "F.logsigmoid(-x).",
            ),
            Mistake(
                _bcel_max_abs_formula,
                "max(x, 0) - x*y + log(1 + exp(-|x|)) has the right value, but autograd "
                "differentiates max and abs at x = 0 with the subgradient 0, so the "
                "gradient there is -y instead of sigmoid(0) - y. Write the loss with "
                "F.logsigmoid / F.softplus, which are smooth.",
            ),
            Mistake(
                _bcel_pos_weight_on_negatives,
                "pos_weight weights the positive term y * log(sigmoid(x)) only, not the "
                "negative one.",
            ),
            Mistake(
                _bcel_sum_instead_of_mean,
                "reduction='mean' divides the summed loss by the number of elements; you "
                "return the sum.",
            ),
        ),
    )
)


# --------------------------------------------------------------- sigmoid_focal_loss


def _sfl_random(g, dtype):
    return (_randn(g, dtype, 6, 3), _randint(g, 2, 6, 3).to(dtype)), {}


def _sfl_dense(g, dtype):
    logits = _randn(g, dtype, 2, 3, 2, 2)
    return (logits, _randint(g, 2, 2, 3, 2, 2).to(dtype)), {"reduction": "none"}


def _sfl_saturated(gamma):
    def make(g, dtype):
        logits = torch.tensor([1e4, -1e4, 1e4, -1e4, 3.0], dtype=dtype)
        target = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype)
        return (logits, target), {"gamma": gamma, "reduction": "none"}

    return make


def _sfl_gamma_zero(g, dtype):
    return (_randn(g, dtype, 8), _randint(g, 2, 8).to(dtype)), {"gamma": 0.0}


def _sfl_no_alpha(g, dtype):
    kwargs = {"alpha": -1.0, "gamma": 1.0}
    return (_randn(g, dtype, 8), _randint(g, 2, 8).to(dtype)), kwargs


def _sfl_soft(g, dtype):
    return (_randn(g, dtype, 4, 3), _rand(g, dtype, 4, 3)), {}


def _sfl_sum(g, dtype):
    kwargs = {"alpha": 0.75, "reduction": "sum"}
    return (_randn(g, dtype, 8), _randint(g, 2, 8).to(dtype)), kwargs


def _sfl_empty(g, dtype):
    return (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, 4, dtype=dtype)), {}


def _sfl_direct_power(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    # torchvision's formula.
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return _reduce(loss, reduction)


def _sfl_alpha_on_both(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    log_1m_pt = torch.where(target > 0.5, F.logsigmoid(-logits), F.logsigmoid(logits))
    loss = ce * torch.exp(gamma * log_1m_pt)
    if alpha >= 0:
        loss = alpha * loss
    return _reduce(loss, reduction)


def _sfl_one_minus_p(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    # (1 - p)^gamma with p = sigmoid(x) for every element, negatives included.
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    loss = ce * torch.exp(gamma * F.logsigmoid(-logits))
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return _reduce(loss, reduction)


def _sfl_alpha_swapped(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    log_1m_pt = torch.where(target > 0.5, F.logsigmoid(-logits), F.logsigmoid(logits))
    loss = ce * torch.exp(gamma * log_1m_pt)
    if alpha >= 0:
        loss = ((1 - alpha) * target + alpha * (1 - target)) * loss
    return _reduce(loss, reduction)


register(
    LossSpec(
        name="sigmoid_focal_loss",
        cases=(
            Case("random logits (N, C)", _sfl_random),
            Case("dense logits (N, C, H, W), reduction='none'", _sfl_dense),
            Case("saturated logits (±1e4), gamma=2", _sfl_saturated(2.0)),
            Case(
                "saturated logits (±1e4), gamma=0.5",
                _sfl_saturated(0.5),
                note="(1 - p_t) ** 0.5 has an infinite slope at p_t = 1: NaN gradients "
                "unless the factor is computed in log space",
            ),
            Case("gamma=0 (alpha-weighted BCE)", _sfl_gamma_zero),
            Case("alpha disabled (alpha=-1), gamma=1", _sfl_no_alpha),
            Case("soft targets", _sfl_soft),
            Case("alpha=0.75, reduction='sum'", _sfl_sum),
            Case("empty batch", _sfl_empty, note="the mean over no element is 0, not NaN"),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _sfl_direct_power,
                "(1 - p_t) ** gamma has an infinite derivative at p_t = 1: for gamma < 1 "
                "and a saturated logit, autograd multiplies inf by sigmoid'(x) = 0 and the "
                "gradient is NaN (kornia issue 918). Compute the factor in log space: "
                "exp(gamma * logsigmoid(-x)) for y = 1, exp(gamma * logsigmoid(x)) for y = 0.",
            ),
            Mistake(
                _sfl_alpha_on_both,
                "alpha weights the positives only; negatives get (1 - alpha): "
                "alpha_t = alpha * y + (1 - alpha) * (1 - y).",
            ),
            Mistake(
                _sfl_one_minus_p,
                "The modulating factor is (1 - p_t)^gamma with p_t the probability of the "
                "true label: p for a positive, 1 - p for a negative, not (1 - p)^gamma "
                "for every element.",
            ),
            Mistake(
                _sfl_alpha_swapped,
                "alpha is the weight of the positives (y = 1) and 1 - alpha that of the "
                "negatives; you have them the other way round.",
            ),
        ),
    )
)


# --------------------------------------------------------------- softmax_focal_loss


def _smfl_random(g, dtype):
    return (_randn(g, dtype, 8, 5), _randint(g, 5, 8)), {}


def _smfl_segmentation_ignore(g, dtype):
    target = _randint(g, 4, 2, 3, 3)
    target[0, 0] = -100
    target[1, 2, 1] = -100
    return (_randn(g, dtype, 2, 4, 3, 3), target), {}


def _smfl_saturated(gamma):
    def make(g, dtype):
        return _saturated_logits(dtype), {"gamma": gamma}

    return make


def _smfl_alpha(g, dtype):
    alpha = torch.tensor([0.25, 0.75, 0.75, 2.0], dtype=dtype)
    return (_randn(g, dtype, 8, 4), _randint(g, 4, 8)), {"alpha": alpha}


def _smfl_all_ignored(g, dtype):
    return (_randn(g, dtype, 3, 4), torch.full((3,), -100)), {}


def _smfl_gamma_zero(g, dtype):
    return (_randn(g, dtype, 6, 5), _randint(g, 5, 6)), {"gamma": 0.0}


def _smfl_one_class(g, dtype):
    return (_randn(g, dtype, 4, 1), torch.zeros(4, dtype=torch.long)), {"gamma": 0.5}


def _smfl_none(g, dtype):
    target = _randint(g, 3, 2, 2, 3)
    return (_randn(g, dtype, 2, 3, 2, 3), target), {"reduction": "none"}


def _smfl_empty(g, dtype):
    return (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, dtype=torch.long)), {}


def _smfl_textbook(logits, target, alpha, gamma, ignore_index, reduction, *, mistake):
    class_dim = 0 if logits.dim() == 1 else 1
    kept = target != ignore_index
    safe = torch.where(kept, target, torch.zeros_like(target)).unsqueeze(class_dim)
    if mistake == "log_of_softmax":
        log_probs = torch.log(torch.softmax(logits, class_dim))
    else:
        log_probs = torch.log_softmax(logits, class_dim)
    log_p = log_probs.gather(class_dim, safe).squeeze(class_dim)
    if mistake == "direct_power" or mistake == "log_of_softmax":
        factor = (1 - log_p.exp()) ** gamma
    else:
        classes = torch.arange(logits.shape[class_dim], device=logits.device).view(
            [-1 if d == class_dim else 1 for d in range(logits.dim())]
        )
        others = logits.masked_fill(classes == safe, torch.finfo(logits.dtype).min)
        log_1m_p = torch.logsumexp(others, class_dim) - torch.logsumexp(logits, class_dim)
        factor = torch.exp(gamma * log_1m_p)
    a = torch.ones_like(log_p) if alpha is None else alpha[safe.squeeze(class_dim)]
    loss = torch.where(kept, -a * factor * log_p, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if mistake == "mean_over_all_elements":
        return loss.sum() / max(loss.numel(), 1)
    if mistake == "alpha_weighted_mean":
        return loss.sum() / (a * kept).sum().clamp_min(1e-12)
    return loss.sum() / kept.sum().clamp_min(1)


def _smfl_mean_over_all(logits, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    return _smfl_textbook(
        logits, target, alpha, gamma, ignore_index, reduction, mistake="mean_over_all_elements"
    )


def _smfl_direct_power(logits, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"):
    return _smfl_textbook(
        logits, target, alpha, gamma, ignore_index, reduction, mistake="direct_power"
    )


def _smfl_alpha_weighted_mean(
    logits, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"
):
    return _smfl_textbook(
        logits, target, alpha, gamma, ignore_index, reduction, mistake="alpha_weighted_mean"
    )


def _smfl_log_of_softmax(
    logits, target, alpha=None, gamma=2.0, ignore_index=-100, reduction="mean"
):
    return _smfl_textbook(
        logits, target, alpha, gamma, ignore_index, reduction, mistake="log_of_softmax"
    )


register(
    LossSpec(
        name="softmax_focal_loss",
        cases=(
            Case("random logits (N, C)", _smfl_random),
            Case(
                "segmentation logits (N, C, H, W) with ignore_index",
                _smfl_segmentation_ignore,
                note="'mean' averages over the pixels that are not ignored",
            ),
            Case("saturated logits (±1e4), gamma=2", _smfl_saturated(2.0)),
            Case(
                "saturated logits (±1e4), gamma=0.5",
                _smfl_saturated(0.5),
                note="(1 - p) ** 0.5 has an infinite slope at p = 1: compute log(1 - p) "
                "with logsumexp over the other classes",
            ),
            Case(
                "per-class alpha",
                _smfl_alpha,
                note="'mean' is over the samples, not normalised by the alphas",
            ),
            Case(
                "all targets ignored",
                _smfl_all_ignored,
                note="the mean over no target is 0, not NaN",
            ),
            Case("gamma=0 (cross entropy)", _smfl_gamma_zero),
            Case(
                "single class (C=1), gamma=0.5",
                _smfl_one_class,
                note="p = 1 for every sample: loss 0, gradient 0, not NaN",
            ),
            Case("reduction='none' (per pixel)", _smfl_none),
            Case("empty batch", _smfl_empty, note="the mean over no sample is 0, not NaN"),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _smfl_mean_over_all,
                "With 'mean', ignored pixels must be left out of the denominator too: "
                "divide by the number of targets that are not ignore_index.",
            ),
            Mistake(
                _smfl_direct_power,
                "(1 - p) ** gamma has an infinite derivative at p = 1, so for gamma < 1 "
                "a saturated logit gives a NaN gradient. Compute log(1 - p_y) as "
                "logsumexp over the other classes minus logsumexp over all, then "
                "exp(gamma * log(1 - p_y)).",
            ),
            Mistake(
                _smfl_alpha_weighted_mean,
                "'mean' here averages over the (non-ignored) samples; it is not divided "
                "by the sum of the alpha weights (unlike cross_entropy's class weights).",
            ),
            Mistake(
                _smfl_log_of_softmax,
                "log(softmax(x)) underflows to log(0) = -inf on saturated logits: use "
                "torch.log_softmax (x - logsumexp(x)).",
            ),
        ),
    )
)


# ----------------------------------------------------------------------- hinge_loss


def _hl_random(g, dtype):
    return (_randn(g, dtype, 8, scale=1.0), _signs(g, 8)), {}


def _hl_one_vs_rest(g, dtype):
    return (_randn(g, dtype, 4, 3, scale=1.0), _signs(g, 4, 3)), {}


def _hl_kink(g, dtype):
    scores = torch.tensor([1.0, -1.0, 1.0, 0.5], dtype=dtype)
    return (scores, torch.tensor([1, -1, -1, 1])), {}


def _hl_exact_fit(g, dtype):
    target = _signs(g, 6)
    return (target.to(dtype) * (1.5 + _rand(g, dtype, 6)), target), {}


def _hl_margin(g, dtype):
    return (_randn(g, dtype, 8, scale=1.0), _signs(g, 8)), {"margin": 0.5}


def _hl_float_labels(g, dtype):
    return (_randn(g, dtype, 8, scale=1.0), _signs(g, 8).to(dtype)), {}


def _hl_none(g, dtype):
    return (_randn(g, dtype, 3, 4, scale=1.0), _signs(g, 3, 4)), {"reduction": "none"}


def _hl_sum(g, dtype):
    return (_randn(g, dtype, 8, scale=1.0), _signs(g, 8)), {"reduction": "sum"}


def _hl_empty(g, dtype):
    return (torch.zeros(0, dtype=dtype), torch.zeros(0, dtype=torch.long)), {}


def _hl_hinge_embedding(scores, target, margin=1.0, reduction="mean"):
    return F.hinge_embedding_loss(scores, target.to(scores.dtype), margin, reduction=reduction)


def _hl_squared(scores, target, margin=1.0, reduction="mean"):
    return _reduce(torch.relu(margin - target * scores) ** 2, reduction)


def _hl_no_margin(scores, target, margin=1.0, reduction="mean"):
    return _reduce(torch.relu(-target * scores), reduction)


def _hl_sum_instead_of_mean(scores, target, margin=1.0, reduction="mean"):
    loss = torch.relu(margin - target * scores)
    return loss if reduction == "none" else loss.sum()


register(
    LossSpec(
        name="hinge_loss",
        cases=(
            Case("random scores (N,)", _hl_random),
            Case("one-vs-rest scores (N, C)", _hl_one_vs_rest),
            Case(
                "exactly at the margin (kink)",
                _hl_kink,
                grad="finite",
                note="at y*s = margin any gradient between 0 and -y is a subgradient",
            ),
            Case("all beyond the margin (exact fit)", _hl_exact_fit),
            Case("margin=0.5", _hl_margin),
            Case("float labels ±1.0", _hl_float_labels),
            Case("reduction='none'", _hl_none),
            Case("reduction='sum'", _hl_sum),
            Case("empty batch", _hl_empty, note="the mean over no element is 0, not NaN"),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _hl_hinge_embedding,
                "nn.HingeEmbeddingLoss is not the SVM hinge loss: it takes distances and "
                "returns x itself for y = 1. The hinge loss is max(0, margin - y * s).",
            ),
            Mistake(
                _hl_squared,
                "That is the squared hinge loss; the hinge loss is max(0, margin - y*s), "
                "not squared.",
            ),
            Mistake(
                _hl_no_margin,
                "The hinge also penalises right but unconfident scores: "
                "max(0, margin - y*s), with the margin (default 1).",
            ),
            Mistake(
                _hl_sum_instead_of_mean,
                "reduction='mean' divides the summed loss by the number of elements; you "
                "return the sum.",
            ),
        ),
    )
)


# ------------------------------------------------------------ multiclass_hinge_loss


def _mh_random(g, dtype):
    return (_randn(g, dtype, 6, 4, scale=0.7), _randint(g, 4, 6)), {}


def _mh_unbatched(g, dtype):
    return (_randn(g, dtype, 5, scale=0.7), torch.tensor(2)), {}


def _mh_squared(g, dtype):
    return (_randn(g, dtype, 6, 4, scale=0.7), _randint(g, 4, 6)), {"p": 2}


def _mh_weights(g, dtype):
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=dtype)
    return (_randn(g, dtype, 6, 4, scale=0.7), _randint(g, 4, 6)), {"weight": weight}


def _mh_weights_squared(g, dtype):
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=dtype)
    kwargs = {"p": 2, "weight": weight}
    return (_randn(g, dtype, 6, 4, scale=0.7), _randint(g, 4, 6)), kwargs


def _mh_margin_sum(g, dtype):
    kwargs = {"margin": 0.5, "reduction": "sum"}
    return (_randn(g, dtype, 6, 4, scale=0.7), _randint(g, 4, 6)), kwargs


def _mh_exact_fit(g, dtype):
    target = _randint(g, 4, 5)
    return (3.0 * F.one_hot(target, 4).to(dtype), target), {}


def _mh_kink(g, dtype):
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 1.0, 0.0]], dtype=dtype)
    return (logits, torch.tensor([0, 2, 1])), {}


def _mh_none(g, dtype):
    return (_randn(g, dtype, 6, 4, scale=0.7), _randint(g, 4, 6)), {"reduction": "none"}


def _mh_empty(g, dtype):
    return (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, dtype=torch.long)), {}


def _mh_textbook(logits, target, margin, p, weight, reduction, *, mistake):
    num_classes = logits.shape[-1]
    index = target.unsqueeze(-1)
    z = torch.relu(margin - logits.gather(-1, index) + logits)
    w = 1.0 if weight is None else weight[index]
    if mistake == "weight_before_power":
        terms = (w * z) ** p
    else:
        terms = w * z**p
    if mistake != "includes_true_class":
        terms = torch.where(torch.arange(num_classes, device=logits.device) == index, 0.0, terms)
    if mistake == "max_over_classes":
        loss = terms.amax(-1)
    else:
        loss = terms.sum(-1)
    if mistake != "not_divided_by_classes":
        loss = loss / num_classes
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / max(loss.numel(), 1)


def _mh_not_divided(logits, target, margin=1.0, p=1, weight=None, reduction="mean"):
    return _mh_textbook(
        logits, target, margin, p, weight, reduction, mistake="not_divided_by_classes"
    )


def _mh_includes_true_class(logits, target, margin=1.0, p=1, weight=None, reduction="mean"):
    return _mh_textbook(logits, target, margin, p, weight, reduction, mistake="includes_true_class")


def _mh_weight_before_power(logits, target, margin=1.0, p=1, weight=None, reduction="mean"):
    return _mh_textbook(logits, target, margin, p, weight, reduction, mistake="weight_before_power")


def _mh_max_over_classes(logits, target, margin=1.0, p=1, weight=None, reduction="mean"):
    return _mh_textbook(logits, target, margin, p, weight, reduction, mistake="max_over_classes")


register(
    LossSpec(
        name="multiclass_hinge_loss",
        cases=(
            Case("random logits (N, C)", _mh_random),
            Case("unbatched logits (C,)", _mh_unbatched),
            Case("p=2 (squared hinge)", _mh_squared),
            Case("class weights", _mh_weights),
            Case(
                "class weights with p=2",
                _mh_weights_squared,
                note="the weight multiplies each term after the power",
            ),
            Case("margin=0.5, reduction='sum'", _mh_margin_sum),
            Case("margins satisfied (exact fit)", _mh_exact_fit),
            Case(
                "exactly at the margin (kink)",
                _mh_kink,
                grad="finite",
                note="where margin - x_y + x_j = 0 any gradient between 0 and 1 is a "
                "subgradient (PyTorch uses 0)",
            ),
            Case("reduction='none'", _mh_none),
            Case("empty batch", _mh_empty),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _mh_not_divided,
                "F.multi_margin_loss divides each sample's sum over the wrong classes by "
                "the number of classes C.",
            ),
            Mistake(
                _mh_includes_true_class,
                "The sum runs over the wrong classes j != y only: the true class's own "
                "term max(0, margin) must be left out.",
            ),
            Mistake(
                _mh_weight_before_power,
                "The class weight w[y] multiplies each term after the power: "
                "w[y] * max(0, margin - x_y + x_j) ** p, not (w[y] * ...) ** p.",
            ),
            Mistake(
                _mh_max_over_classes,
                "That is the Crammer-Singer form (max over the wrong classes); "
                "F.multi_margin_loss sums over them (Weston-Watkins).",
            ),
        ),
    )
)


# ------------------------------------------------------------- hinge_embedding_loss


def _he_random(g, dtype):
    return (2.0 * _rand(g, dtype, 8), _signs(g, 8)), {}


def _he_zero_one_labels(g, dtype):
    return (2.0 * _rand(g, dtype, 8), _randint(g, 2, 8)), {}


def _he_kink(g, dtype):
    distance = torch.tensor([1.0, 1.0, 0.5], dtype=dtype)
    return (distance, torch.tensor([-1, 1, -1])), {}


def _he_margin(g, dtype):
    return (3.0 * _rand(g, dtype, 8), _signs(g, 8)), {"margin": 2.0}


def _he_all_similar(g, dtype):
    return (_rand(g, dtype, 6), torch.ones(6, dtype=torch.long)), {}


def _he_none(g, dtype):
    return (2.0 * _rand(g, dtype, 3, 4), _signs(g, 3, 4)), {"reduction": "none"}


def _he_sum(g, dtype):
    return (2.0 * _rand(g, dtype, 8), _signs(g, 8)), {"reduction": "sum"}


def _he_empty(g, dtype):
    return (torch.zeros(0, dtype=dtype), torch.zeros(0, dtype=torch.long)), {}


def _he_not_one_is_dissimilar(input, target, margin=1.0, reduction="mean"):
    loss = torch.where(target == 1, input, torch.relu(margin - input))
    return _reduce(loss, reduction)


def _he_swapped(input, target, margin=1.0, reduction="mean"):
    loss = torch.where(target == 1, torch.relu(margin - input), input)
    return _reduce(loss, reduction)


def _he_squared(input, target, margin=1.0, reduction="mean"):
    loss = torch.where(target == 1, input**2, torch.relu(margin - input) ** 2)
    return _reduce(loss, reduction)


def _he_svm_hinge(input, target, margin=1.0, reduction="mean"):
    return _reduce(torch.relu(margin - target * input), reduction)


register(
    LossSpec(
        name="hinge_embedding_loss",
        cases=(
            Case("random distances with ±1 labels", _he_random),
            Case(
                "labels other than ±1 (0/1 labels)",
                _he_zero_one_labels,
                note="PyTorch adds both terms for a label that is neither 1 nor -1",
            ),
            Case("exactly at the margin (kink)", _he_kink, grad="finite"),
            Case("margin=2.0", _he_margin),
            Case("all similar pairs (y=1)", _he_all_similar),
            Case("reduction='none' (N, M)", _he_none),
            Case("reduction='sum'", _he_sum),
            Case("empty batch", _he_empty, note="the mean over no element is 0, not NaN"),
        ),
        grad_inputs=(0,),
        mistakes=(
            Mistake(
                _he_not_one_is_dissimilar,
                "F.hinge_embedding_loss treats only y == -1 as dissimilar: a label that is "
                "neither 1 nor -1 (e.g. 0) gets both terms, x + max(0, margin - x). "
                "Follow PyTorch's where(y != 1, ...) + where(y != -1, ...).",
            ),
            Mistake(
                _he_swapped,
                "Similar pairs (y = 1) are pulled together: their loss is the distance x; "
                "dissimilar pairs (y = -1) are pushed beyond the margin: max(0, margin - x).",
            ),
            Mistake(
                _he_squared,
                "That is the contrastive loss (squared terms); the hinge embedding loss "
                "uses x and max(0, margin - x), not their squares.",
            ),
            Mistake(
                _he_svm_hinge,
                "That is the SVM hinge loss of scores, max(0, margin - y*x); the hinge "
                "embedding loss takes distances: x for y = 1, max(0, margin - x) for y = -1.",
            ),
        ),
    )
)
