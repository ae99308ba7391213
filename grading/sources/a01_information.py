"""Assignment source: a01_information (see :mod:`grading.sources`)."""

from __future__ import annotations

from . import SETUP, Exercise

EXERCISES = [
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


ASSIGNMENT = {
    "setup": "\nimport math\n" + SETUP,
    "notebook": "information",
    "title": "Assignment 1: information theory",
    "chapter": "../../book/information-theory.md",
    "chapter_title": "Information theory",
    "functions": "the entropy, the cross-entropy between distributions and the KL and JS "
    "divergences",
    "rules": "`torch.special.entr`, `F.cross_entropy` and `F.kl_div` are off limits where "
    "an exercise says so.",
    "exercises": EXERCISES,
}
