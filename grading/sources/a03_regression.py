"""Assignment source: a03_regression (see :mod:`grading.sources`)."""

from __future__ import annotations

from . import Exercise
from ._outputs import OutputExercise, harness

#: The outlier experiment's data and its exact answer (least squares, or IRLS for Huber).
LINE_HELPERS = '''

def line_data(seed=0, n=40, outliers=4, slope=2.0, intercept=1.0, noise=0.1):
    """Points (x, y) on the line y = slope * x + intercept plus noise, x in [-1, 1];
    `outliers` of the rightmost points are moved up by 15 to 25."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, n, dtype=torch.float64)
    y = slope * x + intercept + noise * torch.randn(n, generator=gen, dtype=torch.float64)
    moved = n - 1 - torch.randperm(n // 4, generator=gen)[:outliers]
    y[moved] += 15 + 10 * torch.rand(len(moved), generator=gen, dtype=torch.float64)
    return x, y


def _exact_line_fit(x, y, loss="mse", delta=1.0, steps=500, lr=0.5):
    """The minimiser (slope, intercept) itself: least squares for "mse", iteratively
    reweighted least squares for "huber" (what gradient descent converges to)."""
    design = torch.stack((x, torch.ones_like(x)), dim=1)
    weights = torch.ones_like(x)
    for _ in range(1 if loss == "mse" else 300):
        root = weights.sqrt()[:, None]
        fit = torch.linalg.lstsq(design * root, y[:, None] * root).solution[:, 0]
        residual = (design @ fit - y).abs()
        weights = torch.where(residual <= delta, 1.0, delta / residual.clamp_min(1e-12))
    return fit


def line_cases(seed):
    """Two data sets drawn from seed, each fitted under MSE and under Huber."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for k in range(2):
        slope = float(6 * torch.rand((), generator=gen) - 3)
        intercept = float(4 * torch.rand((), generator=gen) - 2)
        outliers = int(torch.randint(0, 6, (), generator=gen))
        delta = float(0.5 + 1.5 * torch.rand((), generator=gen))
        data = line_data(seed + k, 48, outliers, slope, intercept)
        label = f"slope {slope:.2f}, intercept {intercept:.2f}, {outliers} outliers"
        cases.append((f"{label}, MSE", (*data, "mse"), {}))
        cases.append((f"{label}, Huber delta={delta:.2f}", (*data, "huber"), {"delta": delta}))
    return cases
'''

_REDUCTION = (
    'The reduction is `"mean"` (over every element), `"sum"` or `"none"` (the elementwise '
    "values): use the `reduce_loss` helper above, which also gives 0 (not NaN) for the mean "
    "of an empty batch. `input` and `target` have the same shape."
)

EXERCISES = [
    Exercise(
        function="mean_error",
        title="1. Mean error (a diagnostic)",
        task=rf"""
The mean (signed) error of predictions $x$ against targets $y$ is

$$\mathrm{{ME}} = \frac{{1}}{{n}} \sum_i (x_i - y_i),$$

positive when the predictions are too large on average. It is a bias diagnostic, not a loss
(it is unbounded below, and errors of opposite signs cancel). {_REDUCTION}
`torch.mean` is fine; `F.l1_loss` is off limits.
""",
        signature='def mean_error(input, target, reduction="mean"):',
        docstring="Mean signed error input - target (a bias diagnostic).",
        solution="""
    return reduce_loss(input - target, reduction)
""",
        forbid="[F.l1_loss]",
        visible=[
            (
                "random",
                "Check that mean_error matches the reference on random inputs",
                ', cases=["random (8,)", "random (4, 3)", "random (2, 3, 4), reduction=\'none\'"]',
            ),
            (
                "edge_cases",
                "Check mean_error with sum, a perfect fit, outliers and an empty batch",
                ', cases=["random (5, 2), reduction=\'sum\'", "exact fit (zero error)", '
                '"outliers of ±1e4", "empty batch (0, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="mse_loss",
        title="2. Mean squared error",
        task=rf"""
$$\mathrm{{MSE}} = \frac{{1}}{{n}} \sum_i (x_i - y_i)^2 .$$

No factor $\tfrac12$ (that is some textbooks' convention, not `F.mse_loss`'s). {_REDUCTION}
`F.mse_loss` is off limits.
""",
        signature='def mse_loss(input, target, reduction="mean"):',
        docstring="Mean squared error of input against target.",
        solution="""
    diff = input - target
    return reduce_loss(diff * diff, reduction)
""",
        forbid="[F.mse_loss]",
        visible=[
            (
                "random",
                "Check that mse_loss matches the reference on random inputs",
                ', cases=["random (8,)", "random (4, 3)", "random (2, 3, 4), reduction=\'none\'"]',
            ),
            (
                "edge_cases",
                "Check mse_loss with sum, a perfect fit, outliers and an empty batch",
                ', cases=["random (5, 2), reduction=\'sum\'", "exact fit (zero error)", '
                '"outliers of ±1e4", "empty batch (0, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="l1_loss",
        title="3. Mean absolute error (L1)",
        task=rf"""
$$\mathrm{{MAE}} = \frac{{1}}{{n}} \sum_i |x_i - y_i| .$$

At $x_i = y_i$ the gradient must be finite (0, as in PyTorch): `torch.abs` does that,
`torch.sqrt(d ** 2)` does not. {_REDUCTION} `F.l1_loss` is off limits.
""",
        signature='def l1_loss(input, target, reduction="mean"):',
        docstring="Mean absolute error of input against target.",
        solution="""
    return reduce_loss((input - target).abs(), reduction)
""",
        forbid="[F.l1_loss]",
        visible=[
            (
                "random",
                "Check that l1_loss matches the reference on random inputs",
                ', cases=["random (8,)", "random (4, 3)", "random (2, 3, 4), reduction=\'none\'"]',
            ),
            (
                "edge_cases",
                "Check l1_loss with sum, a perfect fit, outliers and an empty batch",
                ', cases=["random (5, 2), reduction=\'sum\'", "exact fit (zero error)", '
                '"outliers of ±1e4", "empty batch (0, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="rmse_loss",
        title="4. Root mean squared error",
        task=r"""
$$\mathrm{RMSE} = \sqrt{\mathrm{MSE} + \varepsilon} .$$

The root is taken **after** the reduction: `"mean"` gives the usual RMSE, `"sum"` the root of
the sum of squares, `"none"` the elementwise $\sqrt{d_i^2 + \varepsilon}$. The derivative of
$\sqrt z$ is infinite at $z = 0$: for a perfect fit (and $\varepsilon = 0$) return 0 with a
zero gradient, by taking the root of a safe value where the radicand is 0 (a double
`torch.where`). `F.mse_loss` is off limits.
""",
        signature='def rmse_loss(input, target, eps=0.0, reduction="mean"):',
        docstring="Root mean squared error sqrt(MSE + eps), finite gradient at zero error.",
        solution="""
    diff = input - target
    radicand = reduce_loss(diff * diff, reduction) + eps
    positive = radicand > 0
    safe = torch.where(positive, radicand, torch.ones_like(radicand))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(radicand))
""",
        forbid="[F.mse_loss]",
        visible=[
            (
                "random",
                "Check that rmse_loss matches the reference on random inputs and with eps",
                ', cases=["random (8,)", "random (4, 3)", "eps=1e-3"]',
            ),
            (
                "perfect_fit",
                "Check rmse_loss on a perfect fit (finite gradient), each reduction, empty input",
                ', cases=["exact fit (zero error)", "exact fit, eps=1e-6", '
                "\"random (2, 3, 4), reduction='none'\", \"random (5, 2), reduction='sum'\", "
                '"empty batch (0, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="smooth_l1_loss",
        title="5. Smooth L1 loss with β",
        task=r"""
With $d = x - y$,

$$\ell = \begin{cases} 0.5\, d^2 / \beta & |d| < \beta \\ |d| - 0.5\, \beta & \text{otherwise}
\end{cases}$$

(Fast R-CNN): quadratic near 0, linear with slope 1 beyond $\beta$; both branches meet at
$|d| = \beta$. `beta=0` is exactly the L1 loss, with a finite gradient: do not divide by
$\beta = 0$ (a Python `if` on the number `beta` is fine). `F.smooth_l1_loss`, `F.huber_loss`
and `F.l1_loss` are off limits.
""",
        signature='def smooth_l1_loss(input, target, beta=1.0, reduction="mean"):',
        docstring="Smooth L1 loss of Fast R-CNN with threshold beta.",
        solution="""
    diff = input - target
    abs_diff = diff.abs()
    if beta == 0:
        loss = abs_diff
    else:
        loss = torch.where(abs_diff < beta, 0.5 * diff * diff / beta, abs_diff - 0.5 * beta)
    return reduce_loss(loss, reduction)
""",
        forbid="[F.smooth_l1_loss, F.huber_loss, F.l1_loss]",
        visible=[
            (
                "beta",
                "Check smooth_l1_loss on random inputs, beta=2 and errors of exactly beta",
                ', cases=["random (4, 3)", "beta=2.0", "|d| exactly beta=0.5"]',
            ),
            (
                "beta_zero",
                "Check smooth_l1_loss for beta=0, a perfect fit, outliers and each reduction",
                ', cases=["beta=0 (equals L1)", "exact fit (zero error)", "outliers of ±1e4", '
                '"random (5, 2), reduction=\'sum\'", "empty batch (0, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="huber_loss",
        title="6. Huber loss with δ",
        task=r"""
With $d = x - y$,

$$\ell = \begin{cases} 0.5\, d^2 & |d| < \delta \\ \delta\,(|d| - 0.5\, \delta) &
\text{otherwise} \end{cases}$$

Half the squared error for small errors, linear with slope $\delta$ for large ones: it is
$\delta$ times the smooth L1 loss with $\beta = \delta$ (not the same function unless
$\delta = 1$). Compare $|d|$ with $\delta$, not $d$. `F.huber_loss` and `F.smooth_l1_loss` are
off limits.
""",
        signature='def huber_loss(input, target, delta=1.0, reduction="mean"):',
        docstring="Huber loss of input against target with threshold delta.",
        solution="""
    diff = input - target
    abs_diff = diff.abs()
    loss = torch.where(abs_diff < delta, 0.5 * diff * diff, delta * (abs_diff - 0.5 * delta))
    return reduce_loss(loss, reduction)
""",
        forbid="[F.huber_loss, F.smooth_l1_loss]",
        visible=[
            (
                "delta",
                "Check huber_loss on random inputs with delta=0.5 and delta=3",
                ', cases=["random (4, 3)", "delta=0.5", "delta=3.0"]',
            ),
            (
                "threshold",
                "Check huber_loss at |d| = delta, on outliers, a perfect fit and each reduction",
                ', cases=["|d| exactly delta=2.0", "outliers of ±1e4", "exact fit (zero error)", '
                '"random (5, 2), reduction=\'sum\'", "empty batch (0, 3)"]',
            ),
        ],
        hidden=[""],
    ),
    OutputExercise(
        function="fit_line",
        title="7. Experiment: fitting a line through outliers",
        task=r"""
Why do robust losses exist? Fit a line $\hat y = a x + b$ to points of which a few are
gross outliers, once under the MSE and once under the Huber loss, and compare the slopes.

Write `fit_line(x, y, loss, delta, steps, lr)`: start from $a = b = 0$ and run `steps` steps
of full-batch gradient descent with learning rate `lr` (by hand or with `torch.optim.SGD`)
on the mean loss of $a x + b$ against $y$, with `loss="mse"` or `loss="huber"` (threshold
`delta`). Return `torch.stack((a, b))`, detached. Here, and only here, use `F.mse_loss` and
`F.huber_loss`, not your functions above, so that this exercise is graded on its own.

The data come from `line_data()`: 40 points on $y = 2x + 1$ with noise, and 4 of the
rightmost ones moved up by 15 to 25. The tests compare your fits with the exact minimisers
of each loss (to $10^{-3}$), then check **the experiment's answer**: the Huber fit's slope
stays within 0.5 of the true slope 2, whereas the outliers drag the MSE fit's slope more
than 3 away (under the MSE their gradients grow with their error; under Huber they are
capped at $\delta$). Before running the tests, guess the
two slopes. Which loss would you use for box coordinates with a few wrong annotations?
""",
        signature='def fit_line(x, y, loss="mse", delta=1.0, steps=500, lr=0.5):',
        docstring="Fit y = a x + b by gradient descent on loss; return tensor([a, b]).",
        solution="""
    params = torch.zeros(2, dtype=x.dtype, device=x.device, requires_grad=True)
    optimizer = torch.optim.SGD([params], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        prediction = params[0] * x + params[1]
        if loss == "mse":
            value = F.mse_loss(prediction, y)
        elif loss == "huber":
            value = F.huber_loss(prediction, y, delta=delta)
        else:
            raise ValueError(f"loss must be 'mse' or 'huber', got {loss!r}")
        value.backward()
        optimizer.step()
    return params.detach()
""",
        forbid="[]",
        visible=[
            (
                "clean",
                "Check that fit_line finds the line through clean data under both losses",
                """
x, y = line_data(seed=0, outliers=0)
assert_outputs_match(
    fit_line,
    "fit_line",
    [("clean data, MSE", (x, y, "mse"), {}), ("clean data, Huber", (x, y, "huber"), {})],
    forbid=[],
    reference=_exact_line_fit,
    rtol=0,
    atol=1e-3,
    check_dtype=False,
)
""",
            ),
            (
                "outliers",
                "Check the outlier experiment: the MSE fit follows the outliers, Huber's not",
                """
x, y = line_data(seed=1, outliers=4)
assert_outputs_match(
    fit_line,
    "fit_line",
    [
        ("4 outliers, MSE", (x, y, "mse"), {}),
        ("4 outliers, Huber delta=1", (x, y, "huber"), {"delta": 1.0}),
        ("4 outliers, Huber delta=0.5", (x, y, "huber"), {"delta": 0.5}),
    ],
    forbid=[],
    reference=_exact_line_fit,
    rtol=0,
    atol=1e-3,
    check_dtype=False,
)
slope_mse = float(fit_line(x, y, "mse")[0])
slope_huber = float(fit_line(x, y, "huber", delta=1.0)[0])
print(f"true slope 2, MSE fit {slope_mse:.3f}, Huber fit {slope_huber:.3f}")
assert abs(slope_huber - 2) < 0.5 and abs(slope_mse - 2) > 3, "the experiment's answer"
""",
            ),
        ],
        hidden=[
            """
assert_outputs_match(
    fit_line,
    "fit_line",
    line_cases(HIDDEN_SEED),
    forbid=[],
    reference=_exact_line_fit,
    rtol=0,
    atol=1e-3,
    check_dtype=False,
)
"""
        ],
    ),
]


ASSIGNMENT = {
    "notebook": "regression",
    "title": "Assignment 3: regression losses",
    "chapter": "../../book/regression-losses.md",
    "chapter_title": "Regression losses (Part III)",
    "functions": "the mean error, the MSE, MAE (L1) and RMSE, the smooth L1 loss with β and "
    "the Huber loss with δ, and run a short experiment on outliers",
    "rules": "The matching `torch.nn.functional` losses are off limits (each exercise names "
    "them), and so are the test helpers of this notebook.",
    "harness": harness(LINE_HELPERS),
    "exercises": EXERCISES,
}
