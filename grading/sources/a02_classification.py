"""Assignment source: a02_classification (see :mod:`grading.sources`)."""

from __future__ import annotations

from . import Exercise

EXERCISES = [
    Exercise(
        function="cross_entropy",
        title="1. Softmax cross-entropy with label smoothing",
        task=r"""
For logits $x$ of shape `(N, C)` or `(N, C, d1, ...)` (or `(C,)`) and class indices $y$,

$$\ell_n = -\sum_c w_c\, \tilde t_{n,c} \log \mathrm{softmax}(x_n)_c, \qquad
\tilde t = (1 - \varepsilon)\,\mathrm{onehot}(y) + \varepsilon / C,$$

exactly as `F.cross_entropy` computes it, including `weight`, `ignore_index` (left out of
the mean's denominator) and `label_smoothing`; with class weights the mean divides by
$\sum_n w_{y_n}$. `target` may also hold class probabilities (same shape as the logits).
Use the log-sum-exp trick: `torch.log(torch.softmax(x))` gives $-\infty$ for saturated logits.
`F.cross_entropy` and `F.nll_loss` are off limits.
""",
        signature=(
            "def cross_entropy(\n"
            "    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, "
            'reduction="mean"\n'
            "):"
        ),
        docstring="Softmax cross-entropy with class weights, ignore_index and label smoothing.",
        solution="""
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.shape[class_dim]
    log_probs = logits - torch.logsumexp(logits, dim=class_dim, keepdim=True)
    shape = [1] * logits.dim()
    shape[class_dim] = num_classes
    w = torch.ones(shape, dtype=logits.dtype, device=logits.device)
    if weight is not None:
        w = weight.to(logits.dtype).view(shape)
    eps = label_smoothing
    if target.is_floating_point():  # class probabilities
        soft = target * (1 - eps) + eps / num_classes
        return reduce_loss(-(w * soft * log_probs).sum(class_dim), reduction)
    valid = target != ignore_index
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    classes = torch.arange(num_classes, device=logits.device)
    index_shape = [1] * (safe_target.dim() + 1)
    index_shape[class_dim] = num_classes
    onehot = (safe_target.unsqueeze(class_dim) == classes.view(index_shape)).to(logits.dtype)
    keep = valid.to(logits.dtype)
    nll = -(w * onehot * log_probs).sum(class_dim) * keep
    uniform = -(w * log_probs).sum(class_dim) * keep
    loss = (1 - eps) * nll + eps / num_classes * uniform
    if reduction != "mean":
        return reduce_loss(loss, reduction)
    norm = ((w * onehot).sum(class_dim) * keep).sum()
    return torch.where(norm > 0, loss.sum() / torch.where(norm > 0, norm, 1), 0.0)
""",
        forbid="[F.cross_entropy, F.nll_loss]",
        visible=[
            (
                "stable",
                "Check cross_entropy on random and saturated logits",
                ', cases=["random logits (N, C)", "saturated logits (±1e4)", '
                '"unbatched logits (C,)"]',
            ),
            (
                "label_smoothing",
                "Check cross_entropy with label smoothing, weights and ignored targets",
                ', cases=["random logits (N, C)", "ignore_index present", "class weights"], '
                "label_smoothing=0.1",
            ),
        ],
        hidden=["", ", label_smoothing=0.2"],
    ),
    Exercise(
        function="binary_cross_entropy_with_logits",
        title="2. Binary cross-entropy with logits",
        task=r"""
For logits $x$ and targets $y \in [0, 1]$ of the same shape (multi-label classification),

$$\ell = -\big[\,p_w\, y \log \sigma(x) + (1 - y) \log (1 - \sigma(x))\,\big] \cdot w,$$

with `pos_weight` $p_w$ (broadcast over the classes) and element `weight` $w$. Write it so
that logits of $\pm 10^4$ (and larger) stay finite: $\log \sigma(x) = -\mathrm{softplus}(-x)$.
`F.binary_cross_entropy_with_logits` and `F.binary_cross_entropy` are off limits.
""",
        signature=(
            "def binary_cross_entropy_with_logits(\n"
            '    logits, target, weight=None, pos_weight=None, reduction="mean"\n'
            "):"
        ),
        docstring="Binary cross-entropy of logits, stable for saturated logits.",
        solution="""
    positive = F.logsigmoid(logits) * target
    if pos_weight is not None:
        positive = positive * pos_weight
    loss = -(positive + (1 - target) * F.logsigmoid(-logits))
    if weight is not None:
        loss = loss * weight
    return reduce_loss(loss, reduction)
""",
        forbid="[F.binary_cross_entropy_with_logits, F.binary_cross_entropy]",
        visible=[
            (
                "stable",
                "Check binary_cross_entropy_with_logits on random and saturated logits",
                ', cases=["random logits (N,)", "saturated logits (±1e4)"]',
            ),
            (
                "weights",
                "Check binary_cross_entropy_with_logits with pos_weight and element weights",
                ', cases=["soft targets with element weights", '
                "\"reduction='sum' with pos_weight\"]",
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="sigmoid_focal_loss",
        title="3. Sigmoid focal loss",
        task=r"""
With $p = \sigma(x)$, $p_t = p\,y + (1 - p)(1 - y)$ and $\alpha_t = \alpha y + (1-\alpha)(1-y)$,

$$\mathrm{FL} = -\alpha_t (1 - p_t)^\gamma \log p_t$$

(RetinaNet). `alpha < 0` disables the weighting. The loss and its gradient must stay finite
for every $\gamma \ge 0$ and logits up to $\pm 10^4$: $(1 - p_t)^\gamma$ has an infinite
derivative at $1 - p_t = 0$ when $\gamma < 1$. `F.binary_cross_entropy_with_logits` is off
limits.
""",
        signature=(
            'def sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="mean"):'
        ),
        docstring="Sigmoid focal loss of logits against binary (or soft) targets.",
        solution="""
    ce = F.softplus(logits) - logits * target
    one_minus_pt = target * torch.sigmoid(-logits) + (1 - target) * torch.sigmoid(logits)
    tiny = torch.finfo(logits.dtype).tiny
    # clamped away from 0 so that u ** gamma has a finite gradient for gamma < 1
    modulating = one_minus_pt.clamp_min(tiny) ** gamma if gamma else 1.0
    loss = ce * modulating
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return reduce_loss(loss, reduction)
""",
        forbid="[F.binary_cross_entropy_with_logits]",
        visible=[
            (
                "random",
                "Check sigmoid_focal_loss on random and saturated logits",
                ', cases=["random logits (N, C)", "saturated logits (±1e4), gamma=2"]',
            ),
            (
                "alpha_gamma",
                "Check sigmoid_focal_loss for gamma=0 and with alpha disabled",
                ', cases=["gamma=0 (alpha-weighted BCE)", "alpha disabled (alpha=-1), gamma=1"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="hinge_loss",
        title="4. Hinge loss",
        task=r"""
For scores $s$ and labels $y \in \{-1, +1\}$ (SVM),

$$\ell = \max(0,\ \text{margin} - y\, s).$$

`F.hinge_embedding_loss` (a different loss, on distances) and `F.multi_margin_loss` are off
limits.
""",
        signature='def hinge_loss(scores, target, margin=1.0, reduction="mean"):',
        docstring="Hinge loss max(0, margin - y * s) of scores against ±1 labels.",
        solution="""
    return reduce_loss(torch.clamp(margin - target * scores, min=0), reduction)
""",
        forbid="[F.hinge_embedding_loss, F.multi_margin_loss]",
        visible=[
            (
                "random",
                "Check hinge_loss on random scores",
                ', cases=["random scores (N,)", "one-vs-rest scores (N, C)"]',
            ),
            (
                "margin",
                "Check hinge_loss with another margin and each reduction",
                ', cases=["margin=0.5", "reduction=\'none\'", "reduction=\'sum\'"]',
            ),
        ],
        hidden=[""],
    ),
]


ASSIGNMENT = {
    "notebook": "classification",
    "title": "Assignment 2: classification losses",
    "chapter": "../../book/softmax-cross-entropy.md",
    "chapter_title": "Softmax cross-entropy (Part II: classification)",
    "functions": "the softmax cross-entropy with label smoothing, the binary cross-entropy "
    "with logits, the sigmoid focal loss and the hinge loss",
    "rules": "The matching `torch.nn.functional` losses are off limits (each exercise names them).",
    "exercises": EXERCISES,
}
