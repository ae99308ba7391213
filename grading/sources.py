"""Write the instructor notebooks of ``solutions/`` (the nbgrader source) from this file.

The notebooks are the source of truth that instructors edit; this script is how the first
ones were written and how they can be regenerated after a deliberate change here::

    .venv/bin/python -m grading.sources          # rewrites solutions/a01_*/ and a02_*/

Every exercise follows the same pattern (see ``../shared/STYLE.md``): a read-only Markdown
cell with the task, a solution cell with the signature and docstring given and the answer
between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, two visible test cells and one hidden
test cell (inputs drawn at grading time through ``HIDDEN_SEED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from .course import ROOT, SOURCE_DIR

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def markdown(grade_id: str, text: str):
    cell = nbformat.v4.new_markdown_cell(text.strip("\n"), metadata=_meta(grade_id, locked=True))
    cell.id = grade_id
    return cell


def code(grade_id: str, text: str, **kwargs):
    cell = nbformat.v4.new_code_cell(text.strip("\n"), metadata=_meta(grade_id, **kwargs))
    cell.id = grade_id
    return cell


@dataclass
class Exercise:
    """One function to write: its task, stub, solution and tests."""

    function: str
    title: str
    task: str
    signature: str
    docstring: str
    solution: str
    forbid: str  # a Python list expression, e.g. "[F.kl_div]"
    visible: list[tuple[str, str, str]] = field(default_factory=list)  # (what, doc, extra args)
    hidden: list[str] = field(default_factory=list)  # extra args of each hidden call

    def cells(self) -> list:
        fn = self.function
        body = (
            f"{self.signature}\n"
            f'    """{self.docstring.strip()}\n    """\n'
            "    ### BEGIN SOLUTION\n"
            f"{self.solution.strip(chr(10))}\n"
            "    ### END SOLUTION"
        )
        cells = [
            markdown(f"{fn}_task", f"## {self.title}\n\n{self.task.strip()}"),
            code(fn, body, solution=True),
        ]
        for what, doc, extra in self.visible:
            call = f'assert_loss_matches({fn}, "{fn}", forbid={self.forbid}{extra})'
            cells.append(
                code(
                    f"test_{fn}_{what}",
                    f'"""{doc}"""\n{call}',
                    grade=True,
                    locked=True,
                    points=1,
                )
            )
        calls = "\n".join(
            f'assert_loss_matches({fn}, "{fn}", forbid={self.forbid}, seed=HIDDEN_SEED{extra})'
            for extra in self.hidden
        )
        cells.append(
            code(
                f"test_{fn}_hidden",
                f'"""Check {fn} on every case, with inputs drawn at grading time"""\n'
                f"### BEGIN HIDDEN TESTS\n{calls}\n### END HIDDEN TESTS",
                grade=True,
                locked=True,
                points=2,
            )
        )
        return cells


SETUP = """
import math

import torch
import torch.nn.functional as F
"""

HARNESS = """
import os

from cvloss_ref.testing import assert_loss_matches

# Hidden tests draw their inputs from this seed, which the grader sets at grading time.
HIDDEN_SEED = int(os.environ.get("CVLOSS_HIDDEN_SEED", "2024"))
"""

HELPERS = '''
def reduce_loss(values, reduction):
    """Reduce per-sample values: "none" keeps them, "sum" adds them, "mean" averages them.

    The mean of an empty tensor is 0 (with a zero gradient), not NaN.
    """
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.mean() if values.numel() else 0.0 * values.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
'''


def _intro(title: str, chapter: str, chapter_title: str, functions: str, rules: str) -> str:
    return f"""
# {title}

This assignment goes with the chapter [{chapter_title}]({chapter}) of the book. You will write
{functions} yourself, with the same names and signatures as in `cvloss_ref`.

**Rules.**
- Write each function with elementary tensor operations (`torch.log`, `torch.where`, `sum`,
  ...). {rules} Calling `cvloss_ref` itself is refused too.
- Keep the loss device- and dtype-agnostic: no `.item()`, `.numpy()` or Python `if` on tensor
  values; create new tensors with `torch.zeros_like(x)` or `device=x.device`.
- Put all your code inside the solution cells (between the signature and the end of the cell):
  only those cells are graded. Do not edit or delete the test cells.
- Run every cell from the top (*Kernel → Restart & Run All*) before you submit. The visible
  tests tell you what is wrong; hidden tests check the same function on inputs drawn when your
  notebook is graded.
"""


# ----------------------------------------------------------------------------- a01

A01 = [
    Exercise(
        function="entropy",
        title="1. Entropy",
        task=r"""
The entropy of a distribution $p$ over outcomes $i$ is

$$H(p) = -\sum_i p_i \log p_i,$$

with the convention $0 \log 0 = 0$. The outcomes lie along `dim`; every other dimension indexes
distributions. `reduction="none"` returns one entropy per distribution, `"mean"` their mean and
`"sum"` their sum. `base` changes the unit (nats by default, bits for `base=2`).

At $p_i = 0$ the term must contribute 0 **and a finite gradient**: `p * torch.log(p)` is NaN
there. `torch.special.entr` is off limits.
""",
        signature='def entropy(p, dim=-1, reduction="mean", *, base=math.e):',
        docstring="Entropy of the distributions p along dim, in units of log(base).",
        solution="""
    nonzero = p != 0
    safe_p = torch.where(nonzero, p, torch.ones_like(p))  # log only ever sees p > 0
    terms = torch.where(nonzero, p * torch.log(safe_p), torch.zeros_like(p))
    return reduce_loss(-terms.sum(dim) / math.log(base), reduction)
""",
        forbid="[torch.special.entr]",
        visible=[
            (
                "random",
                "Check that entropy matches the reference on random distributions",
                ', cases=["random distributions (8, 5)", "a single distribution (6,)"]',
            ),
            (
                "zeros_and_dim",
                "Check entropy with exact zeros, one-hot inputs and another dim",
                ', cases=["probabilities with exact zeros", "one-hot distributions", '
                '"distributions along dim=0"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="cross_entropy_dist",
        title="2. Cross-entropy between distributions",
        task=r"""
The cross-entropy of $q$ relative to $p$ is

$$H(p, q) = -\sum_i p_i \log q_i .$$

An outcome with $p_i = q_i = 0$ contributes 0 (with zero gradients); where $p_i > 0 = q_i$ the
cross-entropy is $+\infty$, its correct value. Do not add an `eps` inside the log: where $q$ is
tiny the cross-entropy really is large. `F.cross_entropy` (which takes logits) is off limits.
""",
        signature='def cross_entropy_dist(p, q, dim=-1, reduction="mean", *, base=math.e):',
        docstring="Cross-entropy H(p, q) of the distributions along dim.",
        solution="""
    both_zero = (p == 0) & (q == 0)
    safe_q = torch.where(both_zero, torch.ones_like(q), q)  # 0 log 0 = 0
    terms = -p * torch.log(safe_q)
    return reduce_loss(terms.sum(dim) / math.log(base), reduction)
""",
        forbid="[F.cross_entropy]",
        visible=[
            (
                "random",
                "Check that cross_entropy_dist matches the reference on random distributions",
                ', cases=["random distributions (8, 5)", "identical p and q"]',
            ),
            (
                "zeros_and_tiny_q",
                "Check cross_entropy_dist with exact zeros and a tiny q",
                ', cases=["probabilities with exact zeros", "q tiny (1e-30) where p is positive"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="kl_divergence",
        title="3. Kullback-Leibler divergence",
        task=r"""
$$\mathrm{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i} = H(p, q) - H(p).$$

This function takes **probabilities** $p$ and $q$ (contrast with `F.kl_div`, which takes
$\log q$ first, and which is off limits here). Terms with $p_i = 0$ contribute 0.
""",
        signature='def kl_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):',
        docstring="KL divergence KL(p || q) of the distributions along dim.",
        solution="""
    nonzero = p != 0
    safe_p = torch.where(nonzero, p, torch.ones_like(p))
    safe_q = torch.where(~nonzero & (q == 0), torch.ones_like(q), q)
    p_log_p = torch.where(nonzero, p * torch.log(safe_p), torch.zeros_like(p))
    terms = p_log_p - p * torch.log(safe_q)
    return reduce_loss(terms.sum(dim) / math.log(base), reduction)
""",
        forbid="[F.kl_div]",
        visible=[
            (
                "random",
                "Check that kl_divergence matches the reference on random distributions",
                ', cases=["random distributions (8, 5)", "identical p and q"]',
            ),
            (
                "zeros_and_dim",
                "Check kl_divergence with exact zeros, near-uniform inputs and dim=0",
                ', cases=["probabilities with exact zeros", "near-uniform distributions", '
                '"distributions along dim=0"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="js_divergence",
        title="4. Jensen-Shannon divergence",
        task=r"""
With the mixture $m = (p + q) / 2$,

$$\mathrm{JS}(p, q) = \tfrac12 \mathrm{KL}(p \,\|\, m) + \tfrac12 \mathrm{KL}(q \,\|\, m),$$

which is symmetric and bounded by $\log 2$. Write it self-contained (do not call your
`kl_divergence`, so that each exercise is graded on its own); `F.kl_div` is off limits.
""",
        signature='def js_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):',
        docstring="Jensen-Shannon divergence of the distributions along dim.",
        solution="""
    m = (p + q) / 2

    def kl_to_m(x):
        nonzero = x != 0
        safe_x = torch.where(nonzero, x, torch.ones_like(x))
        safe_m = torch.where(nonzero, m, torch.ones_like(m))  # m > 0 wherever x > 0
        return torch.where(nonzero, x * (torch.log(safe_x) - torch.log(safe_m)), 0.0).sum(dim)

    return reduce_loss(0.5 * (kl_to_m(p) + kl_to_m(q)) / math.log(base), reduction)
""",
        forbid="[F.kl_div]",
        visible=[
            (
                "random",
                "Check that js_divergence matches the reference on random distributions",
                ', cases=["random distributions (8, 5)", "identical p and q"]',
            ),
            (
                "disjoint_supports",
                "Check js_divergence on one-hot and zero-containing distributions",
                ', cases=["one-hot p and q (disjoint or equal supports)", '
                '"probabilities with exact zeros"]',
            ),
        ],
        hidden=[""],
    ),
]


# ----------------------------------------------------------------------------- a02

A02 = [
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


ASSIGNMENT_SOURCES = {
    "a01_information": {
        "notebook": "information",
        "title": "Assignment 1: information theory",
        "chapter": "../../book/information-theory.md",
        "chapter_title": "Information theory",
        "functions": "the entropy, the cross-entropy between distributions and the KL and JS "
        "divergences",
        "rules": "`torch.special.entr`, `F.cross_entropy` and `F.kl_div` are off limits where "
        "an exercise says so.",
        "exercises": A01,
    },
    "a02_classification": {
        "notebook": "classification",
        "title": "Assignment 2: classification losses",
        "chapter": "../../book/roadmap.md",
        "chapter_title": "Classification losses (Part II; see the roadmap)",
        "functions": "the softmax cross-entropy with label smoothing, the binary cross-entropy "
        "with logits, the sigmoid focal loss and the hinge loss",
        "rules": "The matching `torch.nn.functional` losses are off limits (each exercise "
        "names them).",
        "exercises": A02,
    },
}


def build(assignment: str) -> nbformat.NotebookNode:
    info = ASSIGNMENT_SOURCES[assignment]
    cells = [
        markdown(
            "intro",
            _intro(
                info["title"],
                info["chapter"],
                info["chapter_title"],
                info["functions"],
                info["rules"],
            ),
        ),
        code(
            "setup",
            SETUP if assignment == "a01_information" else SETUP.replace("import math\n\n", ""),
            locked=True,
        ),
        code("harness", HARNESS, locked=True),
        code("helpers", HELPERS, locked=True),
    ]
    for exercise in info["exercises"]:
        cells.extend(exercise.cells())
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return nb


def main() -> None:
    for assignment, info in ASSIGNMENT_SOURCES.items():
        path = SOURCE_DIR / assignment / f"{info['notebook']}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build(assignment), str(path))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
