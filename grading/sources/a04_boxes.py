"""Assignment source: a04_boxes (see :mod:`grading.sources`)."""

from __future__ import annotations

from . import HELPERS, SETUP, Exercise
from ._outputs import OutputExercise, harness

BOX_HELPERS = '''

def to_xyxy(boxes, box_format="xyxy"):
    """Boxes (..., 4) given as "xyxy" (corners), "xywh" (top-left corner, width, height) or
    "cxcywh" (centre, width, height), returned as "xyxy" corners (x1, y1, x2, y2)."""
    a, b, c, d = boxes.unbind(-1)
    if box_format == "xyxy":
        return boxes
    if box_format == "xywh":
        return torch.stack((a, b, a + c, b + d), dim=-1)
    if box_format == "cxcywh":
        return torch.stack((a - c / 2, b - d / 2, a + c / 2, b + d / 2), dim=-1)
    raise ValueError(f"box_format must be 'xyxy', 'xywh' or 'cxcywh', got {box_format!r}")
'''

#: Cases of diou_nms: hand-made ones and clusters of boxes drawn from a seed.
NMS_HELPERS = '''

def _boxes(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype).reshape(-1, 4)


NMS_EXAMPLES = [
    (
        "two boxes, threshold 0.52: DIoU 0.505 keeps both",
        (_boxes([[0, 0, 10, 10], [3, 0, 13, 10]]), torch.tensor([0.9, 0.8])),
        {"iou_threshold": 0.52},
    ),
    (
        "the same two boxes, distance_penalty=False (plain NMS) suppresses one",
        (_boxes([[0, 0, 10, 10], [3, 0, 13, 10]]), torch.tensor([0.9, 0.8])),
        {"iou_threshold": 0.52, "distance_penalty": False},
    ),
    (
        "scores not in the order of the boxes",
        (
            _boxes([[0, 0, 10, 10], [1, 1, 11, 11], [30, 30, 40, 40], [31, 30, 41, 40]]),
            torch.tensor([0.3, 0.9, 0.5, 0.8]),
        ),
        {"iou_threshold": 0.5},
    ),
    (
        "a chain: A suppresses B, so C (which only B overlaps much) is kept",
        (
            _boxes([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]]),
            torch.tensor([0.9, 0.8, 0.7]),
        ),
        {"iou_threshold": 0.3},
    ),
    (
        "identical boxes, point boxes and a zero-width box",
        (
            _boxes([[5, 5, 15, 15], [5, 5, 15, 15], [2, 2, 2, 2], [2, 2, 2, 2], [6, 0, 6, 9]]),
            torch.tensor([0.6, 0.7, 0.5, 0.4, 0.9]),
        ),
        {"iou_threshold": 0.5},
    ),
    (
        "boxes in cxcywh format, beta=0.6",
        (
            _boxes([[5, 5, 10, 10], [7, 5, 10, 10], [9, 6, 8, 12], [30, 30, 4, 4]]),
            torch.tensor([0.9, 0.8, 0.7, 0.6]),
        ),
        {"iou_threshold": 0.4, "beta": 0.6, "box_format": "cxcywh"},
    ),
    ("no boxes", (torch.zeros(0, 4), torch.zeros(0)), {"iou_threshold": 0.5}),
]


def nms_cases(seed):
    """Clusters of overlapping boxes (as a detector outputs) with random scores."""
    gen = torch.Generator().manual_seed(seed)
    settings = [
        {"iou_threshold": 0.5},
        {"iou_threshold": 0.35},
        {"iou_threshold": 0.45, "distance_penalty": False},
        {"iou_threshold": 0.4, "beta": 0.6},
        {"iou_threshold": 0.5, "box_format": "cxcywh"},
        {"iou_threshold": 0.4},
    ]
    cases = []
    for k, kwargs in enumerate(settings):
        centre = 100 * torch.rand(3, 1, 2, generator=gen, dtype=torch.float64)
        size = 20 + 20 * torch.rand(3, 1, 2, generator=gen, dtype=torch.float64)
        shift = 0.25 * size * (2 * torch.rand(3, 5, 2, generator=gen, dtype=torch.float64) - 1)
        scale = torch.exp(0.2 * (2 * torch.rand(3, 5, 2, generator=gen, dtype=torch.float64) - 1))
        centres, sizes = (centre + shift).reshape(-1, 2), (size * scale).reshape(-1, 2)
        if k == len(settings) - 1:  # a row of boxes, each overlapping the next ones: chains
            steps = 1.5 + 2.5 * torch.rand(15, generator=gen, dtype=torch.float64)
            centres = torch.stack((steps.cumsum(0), torch.zeros(15, dtype=torch.float64)), -1)
            sizes = torch.full((15, 2), 10.0, dtype=torch.float64)
        if kwargs.get("box_format") == "cxcywh":
            boxes = torch.cat((centres, sizes), dim=-1)
        else:
            boxes = torch.cat((centres - sizes / 2, centres + sizes / 2), dim=-1)
        scores = torch.rand(15, generator=gen, dtype=torch.float64)
        options = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        what = "a row of 15 boxes" if k == len(settings) - 1 else "3 clusters of 5 boxes"
        cases.append((f"{what} ({k + 1}), {options}", (boxes, scores), kwargs))
    return cases
'''

_FORMATS = (
    'Boxes are tensors of shape `(..., 4)`; `box_format` is `"xyxy"` (default), `"xywh"` or '
    '`"cxcywh"` for both inputs: the helper `to_xyxy` above converts them. The loss is '
    "elementwise over matching pairs (`pred[i]` against `target[i]`), reduced by "
    "`reduce_loss`."
)

_PIECES = r"""
With $I$ the intersection (its width and height **clamped at 0**: disjoint boxes intersect
in nothing), $U = |A| + |B| - I$ the union and $\mathrm{IoU} = I / (U + \varepsilon)$.
Widths are $x_2 - x_1$ (no "+1 pixel").
"""

_GEOMETRY = (
    ', cases=["random overlapping boxes", "one box inside the other", "disjoint boxes", '
    '"far apart boxes (1e4)"]'
)
_EDGES = (
    ', cases=["identical boxes", "touching edges", '
    '"degenerate boxes (zero width, zero height, point)", "cxcywh boxes", "xywh boxes", '
    '"batched leading dimensions (2, 3, 4)", "empty batch", '
    "\"random overlapping boxes, reduction='sum'\"]"
)


def _loss_tests(name: str) -> list[tuple[str, str, str]]:
    return [
        (
            "geometry",
            f"Check {name} on overlapping, nested, disjoint and far-apart boxes",
            _GEOMETRY,
        ),
        (
            "edge_cases",
            f"Check {name} on identical, touching and degenerate boxes, box formats, "
            "batches and reductions",
            _EDGES,
        ),
    ]


_IOU_PIECES = """
    pred, target = to_xyxy(pred, box_format), to_xyxy(target, box_format)
    bottom_right = torch.minimum(pred[..., 2:], target[..., 2:])
    wh = (bottom_right - torch.maximum(pred[..., :2], target[..., :2])).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    size, target_size = pred[..., 2:] - pred[..., :2], target[..., 2:] - target[..., :2]
    union = size[..., 0] * size[..., 1] + target_size[..., 0] * target_size[..., 1] - inter
    iou = inter / (union + eps)"""

_ENCLOSING = """
    enclosing = torch.maximum(pred[..., 2:], target[..., 2:]) - torch.minimum(
        pred[..., :2], target[..., :2]
    )"""

_DISTANCE = """
    centre_diff = (pred[..., :2] + pred[..., 2:]) - (target[..., :2] + target[..., 2:])
    rho2 = (centre_diff**2).sum(-1) / 4
    c2 = (enclosing**2).sum(-1)"""

EXERCISES = [
    Exercise(
        function="box_iou",
        title="1. Pairwise IoU",
        task=rf"""
For two sets of `"xyxy"` boxes, `boxes1` of shape `(N, 4)` and `boxes2` of shape `(M, 4)`,
return the `(N, M)` matrix of $\mathrm{{IoU}}(A, B) = |A \cap B| / |A \cup B|$, every box of
`boxes1` against every box of `boxes2` (broadcast with `[:, None]` and `[None, :]`).
{_PIECES}
No $\varepsilon$ here: where the union is empty (two identical points) the IoU is 0, with a
zero gradient (a double `torch.where`, not 0/0). `torchvision.ops.box_iou` is off limits.
""",
        signature="def box_iou(boxes1, boxes2):",
        docstring="Pairwise IoU (N, M) of xyxy boxes (N, 4) and (M, 4).",
        solution="""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    nonzero = union != 0
    safe = torch.where(nonzero, union, torch.ones_like(union))
    return torch.where(nonzero, inter / safe, torch.zeros_like(inter))
""",
        forbid="[torchvision.ops.box_iou]",
        visible=[
            (
                "random",
                "Check box_iou on random, nested and disjoint boxes",
                ', cases=["random boxes, 5 x 7", "one box inside the other", "disjoint boxes"]',
            ),
            (
                "edge_cases",
                "Check box_iou on identical, touching, degenerate and far-apart boxes",
                ', cases=["identical sets", "touching edges", '
                '"degenerate boxes (zero width, zero height, point)", "far apart boxes (1e4)", '
                '"no boxes in boxes1"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="iou_loss",
        title="2. IoU loss, linear and log",
        task=rf"""
{_PIECES}
`mode="linear"` returns $1 - \mathrm{{IoU}}$; `mode="log"` returns UnitBox's
$-\ln \max(\mathrm{{IoU}}, \varepsilon)$: the clamp at `eps` keeps disjoint boxes finite
($-\ln \varepsilon \approx 16.1$, with a zero gradient). {_FORMATS}
`torchvision.ops.box_iou` is off limits.
""",
        signature=(
            "def iou_loss(\n"
            '    pred, target, mode="linear", eps=1e-7, reduction="mean", *, box_format="xyxy"\n'
            "):"
        ),
        docstring="IoU loss of matching boxes: 1 - IoU, or -log IoU in log mode.",
        solution=f"""{_IOU_PIECES}
    loss = 1 - iou if mode == "linear" else -torch.log(iou.clamp(min=eps))
    return reduce_loss(loss, reduction)
""",
        forbid="[torchvision.ops.box_iou]",
        visible=[
            *_loss_tests("iou_loss")[:1],
            (
                "log_and_edge_cases",
                "Check iou_loss in log mode and on touching and degenerate boxes",
                ', cases=["log mode, overlapping boxes", '
                '"log mode, disjoint and degenerate boxes", "identical boxes", "touching edges", '
                '"degenerate boxes (zero width, zero height, point)", "cxcywh boxes", '
                '"xywh boxes", "empty batch"]',
            ),
        ],
        hidden=[""],
    ),
    Exercise(
        function="giou_loss",
        title="3. GIoU loss",
        task=rf"""
{_PIECES}
With $C$ the smallest box enclosing both,

$$\mathcal{{L}}_{{GIoU}} = 1 - \mathrm{{IoU}} + \frac{{|C| - U}}{{|C| + \varepsilon}} .$$

The penalty is divided by the **enclosing** area, not by the union; the loss lies in
$[0, 2]$ and, unlike the IoU loss, has a gradient for disjoint boxes. {_FORMATS}
`torchvision.ops.generalized_box_iou_loss` and `generalized_box_iou` are off limits.
""",
        signature=(
            'def giou_loss(pred, target, eps=1e-7, reduction="mean", *, box_format="xyxy"):'
        ),
        docstring="Generalized IoU loss of matching boxes.",
        solution=f"""{_IOU_PIECES}{_ENCLOSING}
    area_c = enclosing[..., 0] * enclosing[..., 1]
    return reduce_loss(1 - iou + (area_c - union) / (area_c + eps), reduction)
""",
        forbid="[torchvision.ops.generalized_box_iou_loss, torchvision.ops.generalized_box_iou]",
        visible=_loss_tests("giou_loss"),
        hidden=[""],
    ),
    Exercise(
        function="diou_loss",
        title="4. DIoU loss",
        task=rf"""
This exercise and the next three go with the chapters
[DIoU, CIoU and DIoU-NMS](../../book/diou-ciou.md) and
[EIoU and other variants](../../book/iou-variants.md).
{_PIECES}
With $\rho^2$ the **squared** distance between the box centres and $c^2$ the squared
diagonal of the smallest box enclosing both,

$$\mathcal{{L}}_{{DIoU}} = 1 - \mathrm{{IoU}} + \frac{{\rho^2}}{{c^2 + \varepsilon}} .$$

{_FORMATS} `torchvision.ops.distance_box_iou_loss` and `distance_box_iou` are off limits.
""",
        signature=(
            'def diou_loss(pred, target, eps=1e-7, reduction="mean", *, box_format="xyxy"):'
        ),
        docstring="Distance-IoU loss of matching boxes.",
        solution=f"""{_IOU_PIECES}{_ENCLOSING}{_DISTANCE}
    return reduce_loss(1 - iou + rho2 / (c2 + eps), reduction)
""",
        forbid="[torchvision.ops.distance_box_iou_loss, torchvision.ops.distance_box_iou]",
        visible=_loss_tests("diou_loss"),
        hidden=[""],
    ),
    Exercise(
        function="ciou_loss",
        title="5. CIoU loss, with the detached α",
        task=rf"""
CIoU adds an aspect-ratio term to DIoU:

$$\mathcal{{L}}_{{CIoU}} = \mathcal{{L}}_{{DIoU}} + \alpha v, \qquad
v = \frac{{4}}{{\pi^2}}\left(\arctan\frac{{w^{{gt}}}}{{h^{{gt}}}} - \arctan\frac{{w}}{{h}}\right)^2,
\qquad \alpha = \frac{{v}}{{(1 - \mathrm{{IoU}}) + v + \varepsilon}} .$$

$\alpha$ is a trade-off weight, **computed without gradient** (`torch.no_grad()` or
`.detach()`), as in the authors' code and torchvision; $v$ carries the gradient. Write
$\arctan(w/h)$ as `torch.atan2(w, h)`, finite for $h = 0$; for a point box ($w = h = 0$)
take the angle as 0 with a zero gradient (a double `torch.where`). {_FORMATS}
`torchvision.ops.complete_box_iou_loss` and `complete_box_iou` are off limits.
""",
        signature=(
            'def ciou_loss(pred, target, eps=1e-7, reduction="mean", *, box_format="xyxy"):'
        ),
        docstring="Complete-IoU loss of matching boxes (alpha detached).",
        solution=f"""{_IOU_PIECES}{_ENCLOSING}{_DISTANCE}

    def angle(w, h):
        point = (w == 0) & (h == 0)
        safe = torch.atan2(torch.where(point, 1.0, w), torch.where(point, 1.0, h))
        return torch.where(point, 0.0, safe)

    v = 4 / math.pi**2 * (angle(*target_size.unbind(-1)) - angle(*size.unbind(-1))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return reduce_loss(1 - iou + rho2 / (c2 + eps) + alpha * v, reduction)
""",
        forbid="[torchvision.ops.complete_box_iou_loss, torchvision.ops.complete_box_iou]",
        visible=_loss_tests("ciou_loss"),
        hidden=[""],
    ),
    Exercise(
        function="eiou_loss",
        title="6. EIoU loss",
        task=rf"""
EIoU replaces CIoU's aspect term by separate width and height terms, each normalised by the
enclosing box's width² or height²:

$$\mathcal{{L}}_{{EIoU}} = \mathcal{{L}}_{{DIoU}} + \frac{{(w - w^{{gt}})^2}}{{C_w^2 + \varepsilon}}
+ \frac{{(h - h^{{gt}})^2}}{{C_h^2 + \varepsilon}} .$$

{_FORMATS} (This is Zhang et al.'s *Efficient*-IoU, not mmdetection's *Extended*-IoU.)
`torchvision.ops.distance_box_iou_loss` is off limits.
""",
        signature=(
            'def eiou_loss(pred, target, eps=1e-7, reduction="mean", *, box_format="xyxy"):'
        ),
        docstring="Efficient-IoU loss of matching boxes.",
        solution=f"""{_IOU_PIECES}{_ENCLOSING}{_DISTANCE}
    shape_terms = (size - target_size) ** 2 / (enclosing**2 + eps)
    return reduce_loss(1 - iou + rho2 / (c2 + eps) + shape_terms.sum(-1), reduction)
""",
        forbid="[torchvision.ops.distance_box_iou_loss]",
        visible=_loss_tests("eiou_loss"),
        hidden=[""],
    ),
    OutputExercise(
        function="diou_nms",
        title="7. DIoU-NMS",
        task=r"""
Non-maximum suppression keeps the highest-scoring box $M$, removes every remaining box
whose overlap with $M$ is above `iou_threshold`, and repeats with the next box **still
kept** (greedy), like `torchvision.ops.nms`. DIoU-NMS measures the overlap by

$$\mathrm{IoU}(M, B_i) - \left(\frac{\rho^2(M, B_i)}{c^2}\right)^{\beta},$$

so that nearby boxes with distant centres (two occluding objects) survive. The IoU is 0
where the union is empty and the penalty 0 where $c^2 = 0$ (no $\varepsilon$ here);
`distance_penalty=False` gives plain NMS. Sort by decreasing score, ties broken by index
(`torch.argsort(scores, descending=True, stable=True)`), and return the `int64` indices
(into `boxes`) of the kept boxes, best first.

NMS is not a loss: a Python loop over the sorted boxes is fine here, and nothing is
differentiated. `torchvision.ops.nms` and `batched_nms` are off limits.
""",
        signature=(
            "def diou_nms(\n"
            "    boxes, scores, iou_threshold=0.5, *, beta=1.0, distance_penalty=True, "
            'box_format="xyxy"\n'
            "):"
        ),
        docstring="Greedy NMS suppressing by DIoU; int64 indices of the kept boxes.",
        solution="""
    order = torch.argsort(scores, descending=True, stable=True)
    x1, y1, x2, y2 = to_xyxy(boxes, box_format)[order].unbind(-1)
    areas = (x2 - x1) * (y2 - y1)
    count = len(order)
    removed = torch.zeros(count, dtype=torch.bool, device=boxes.device)
    later = torch.arange(count, device=boxes.device)
    keep = []
    for i in range(count):
        if removed[i]:
            continue
        keep.append(i)
        inter = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0) * (
            torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)
        ).clamp(min=0)
        union = areas[i] + areas - inter
        score = torch.where(union != 0, inter / torch.where(union != 0, union, 1.0), 0.0)
        if distance_penalty:
            rho2 = ((x1[i] + x2[i] - x1 - x2) ** 2 + (y1[i] + y2[i] - y1 - y2) ** 2) / 4
            c2 = (torch.maximum(x2[i], x2) - torch.minimum(x1[i], x1)) ** 2 + (
                torch.maximum(y2[i], y2) - torch.minimum(y1[i], y1)
            ) ** 2
            penalty = torch.where(c2 != 0, rho2 / torch.where(c2 != 0, c2, 1.0), 0.0)
            score = score - penalty**beta
        removed |= (later > i) & (score > iou_threshold)
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]
""",
        forbid="[torchvision.ops.nms, torchvision.ops.batched_nms]",
        visible=[
            (
                "examples",
                "Check diou_nms on small hand-made examples (see each case's name)",
                """
assert_outputs_match(
    diou_nms, "diou_nms", NMS_EXAMPLES, forbid=[torchvision.ops.nms, torchvision.ops.batched_nms]
)
""",
            ),
            (
                "clusters",
                "Check diou_nms on clusters of boxes with random scores",
                """
assert_outputs_match(
    diou_nms, "diou_nms", nms_cases(0), forbid=[torchvision.ops.nms, torchvision.ops.batched_nms]
)
""",
            ),
        ],
        hidden=[
            """
assert_outputs_match(
    diou_nms,
    "diou_nms",
    nms_cases(HIDDEN_SEED),
    forbid=[torchvision.ops.nms, torchvision.ops.batched_nms],
)
"""
        ],
    ),
]


ASSIGNMENT = {
    "setup": "\nimport math\n" + SETUP + "import torchvision\n",
    "notebook": "boxes",
    "title": "Assignment 4: bounding-box losses",
    "chapter": "../../book/iou-losses.md",
    "chapter_title": "IoU and GIoU losses (Part III)",
    "functions": "the pairwise IoU, the IoU loss (linear and log), the GIoU, DIoU, CIoU and "
    "EIoU losses and DIoU-NMS (chapters [DIoU, CIoU and DIoU-NMS](../../book/diou-ciou.md) "
    "and [EIoU and other variants](../../book/iou-variants.md))",
    "rules": "`torchvision.ops` (its IoUs, box losses and NMS) is off limits where an "
    "exercise says so, and so are the test helpers of this notebook.",
    "harness": harness(NMS_HELPERS),
    "helpers": HELPERS + BOX_HELPERS,
    "exercises": EXERCISES,
}
