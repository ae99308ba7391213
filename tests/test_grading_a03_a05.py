"""Assignments a03_regression, a04_boxes and a05_dense: release, conventions, typical
mistakes (each loses its exercise's points only) and one sandboxed autograde batch.

Exercises on functions that are not catalogue losses (``fit_line``, ``diou_nms``,
``unet_weight_map``) are checked by ``assert_outputs_match`` cells, which the grader re-runs
in its trusted process (``grading.autograde.run_test_cell``); their wrong implementations are
the fixtures below, run through that same function.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import cvloss_ref
import cvloss_ref.cases  # fills CATALOGUE (the mistakes below)
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import loss_names
from grading import release
from grading.autograde import run_test_cell
from grading.course import RELEASE_DIR
from grading.demo import submission
from grading.notebooks import BEGIN_HIDDEN, convention_errors, source_notebooks, support_code
from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
from tests import _grading_verdicts as verdicts
from tests._env import IN_CI, NO_BWRAP

ASSIGNMENTS = {
    "a03_regression": [
        "mean_error",
        "mse_loss",
        "l1_loss",
        "rmse_loss",
        "smooth_l1_loss",
        "huber_loss",
        "fit_line",
    ],
    "a04_boxes": [
        "box_iou",
        "iou_loss",
        "giou_loss",
        "diou_loss",
        "ciou_loss",
        "eiou_loss",
        "diou_nms",
        "focal_eiou_loss",
        "alpha_iou_loss",
    ],
    "a05_dense": ["weighted_pixel_cross_entropy", "unet_weight_map", "dice_loss"],
}
OUTPUT_EXERCISES = {"fit_line": "a03_regression", "diou_nms": "a04_boxes"}
OUTPUT_EXERCISES["unet_weight_map"] = "a05_dense"


def _source(assignment):
    (source,) = source_notebooks(assignment)
    return source


def _solution_namespace(source) -> dict:
    namespace: dict = {}
    exec(support_code(source), namespace)
    for cell in source.nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)
    return namespace


# ----------------------------------------------------------------------- notebooks


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_current_and_strips_solutions_and_hidden_tests(assignment):
    assert not convention_errors(_source(assignment))
    files = release.released_files(assignment)
    assert files
    for relative, text in files.items():
        assert (RELEASE_DIR / relative).read_text(encoding="utf-8") == text
        assert "### BEGIN SOLUTION" not in text and BEGIN_HIDDEN not in text
        assert "HIDDEN_SEED)" not in text and "seed=HIDDEN_SEED" not in text
        assert text.count("raise NotImplementedError()") == len(ASSIGNMENTS[assignment])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_exercise_has_two_visible_tests_and_a_hidden_one(assignment):
    source = _source(assignment)
    assert source.solution_ids == ASSIGNMENTS[assignment]
    intro = source.nb.cells[0].source
    assert "/book/" in intro and ".html" in intro  # a link to a published chapter
    for name in source.solution_ids:
        tests = [t for t in source.tests if name in t.functions]
        assert [t.hidden for t in tests] == [False, False, True]
        assert [t.points for t in tests] == [1, 1, 2]
        kinds = {check.kind for t in tests for check in t.checks}
        assert kinds == {"outputs" if name in OUTPUT_EXERCISES else "loss"}
        for test in tests:
            for check in test.checks:
                assert check.function == check.reference == name
                if check.kind == "loss":
                    assert check.reference in loss_names()
    assert source.max_score == 4 * len(source.solution_ids)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_signatures_are_those_of_the_reference(assignment):
    source = _source(assignment)
    namespace = _solution_namespace(source)
    for name in source.solution_ids:
        if name == "fit_line":
            continue
        student = list(inspect.signature(namespace[name]).parameters)
        reference = list(inspect.signature(getattr(cvloss_ref, name)).parameters)
        assert student == [p for p in reference if p in student], name
        assert set(reference) - set(student) <= {"validate"}, name


def test_chapters_are_linked():
    for assignment, chapters in {
        "a03_regression": ["regression-losses.md"],
        "a04_boxes": ["iou-losses.md", "diou-ciou.md", "iou-variants.md"],
        "a05_dense": ["pixel-losses.md"],
    }.items():
        text = "\n".join(
            c.source for c in _source(assignment).nb.cells if c.cell_type == "markdown"
        )
        for chapter in chapters:  # release writes the published address (course_links)
            assert f"/book/{chapter.removesuffix('.md')}.html)" in text


# ----------------------------------------------------------------------- re-run cells


@pytest.mark.parametrize("name", OUTPUT_EXERCISES)
def test_output_cells_pass_with_the_solution_and_fail_with_the_stub(name):
    source = _source(OUTPUT_EXERCISES[name])
    solution = _solution_namespace(source)[name]

    def stub(*args, **kwargs):
        raise NotImplementedError()

    for index, test in enumerate(source.tests):
        if name in test.functions:
            assert run_test_cell(source, test, {name: solution}, 11 + index) == (True, "")
            ok, message = run_test_cell(source, test, {name: stub}, 11 + index)
            assert not ok and f"{name} raised NotImplementedError" in message


# ----------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_grader_passes_the_instructor_solution_on_every_cell(assignment):
    """The grader's verification (``_verify``) of the solution, in this process, cell by
    cell: each cell passes and calls the function it checks, and that one only (a
    solution that called another exercise's function would pass that one's mistakes on)."""
    verdicts.expect_instructor_passes_every_cell(assignment)


def _nms(
    boxes,
    scores,
    iou_threshold=0.5,
    *,
    beta=1.0,
    distance_penalty=True,
    box_format="xyxy",
    penalty=True,
    squared=True,
    greedy=True,
    sort=True,
):
    """DIoU-NMS with switches for the typical mistakes."""
    xyxy = cvloss_ref.box_convert(boxes, box_format, "xyxy")
    order = (
        torch.argsort(scores, descending=True, stable=True) if sort else torch.arange(len(boxes))
    )
    keep, removed = [], set()
    for position, i in enumerate(order.tolist()):
        if i in removed and greedy:
            continue
        if i not in removed:
            keep.append(i)
        # greedy=False: a suppressed box still suppresses the boxes after it
        for j in order[position + 1 :].tolist():
            a, b = xyxy[i], xyxy[j]
            iou = cvloss_ref.box_iou(a[None], b[None])[0, 0]
            if distance_penalty and penalty:
                rho2 = ((a[:2] + a[2:] - b[:2] - b[2:]) ** 2).sum() / 4
                c2 = ((torch.maximum(a[2:], b[2:]) - torch.minimum(a[:2], b[:2])) ** 2).sum()
                ratio = rho2 / c2 if c2 > 0 else torch.zeros(())
                iou = iou - (ratio if squared else ratio.sqrt()) ** beta
            if iou > iou_threshold:
                removed.add(j)
    return torch.tensor(keep, dtype=torch.long)


def _weight_map(
    mask, w0=10.0, sigma=5.0, class_weights=None, *, balance=True, background=True, form="sum"
):
    """U-Net's weight map with switches for the typical mistakes."""
    from scipy.ndimage import distance_transform_edt

    maps = []
    for labels in mask.reshape(-1, *mask.shape[-2:]):
        foreground = labels > 0
        n, n_fg = labels.numel(), int(foreground.sum())
        k = (n_fg > 0) + (n_fg < n)
        if class_weights is not None:
            w_bg, w_fg = class_weights
        elif balance:
            w_fg = n / (k * n_fg) if n_fg else 0.0
            w_bg = n / (k * (n - n_fg)) if n_fg < n else 0.0
        else:
            w_bg = w_fg = 1.0
        weights = torch.where(foreground, w_fg, w_bg).double()
        ids = torch.unique(labels[foreground])
        if len(ids) >= 2 and w0 > 0:
            d = torch.stack(
                [torch.from_numpy(distance_transform_edt((labels != i).numpy())) for i in ids]
            )
            d1, d2 = d.topk(2, dim=0, largest=False).values
            spread = {"sum": (d1 + d2) ** 2, "squares": d1**2 + d2**2, "nearest": (2 * d1) ** 2}
            border = w0 * torch.exp(-spread[form] / (2 * sigma**2))
            weights = weights + (torch.where(foreground, 0.0, border) if background else border)
        maps.append(weights.float())
    return torch.stack(maps).reshape(mask.shape)


def _fit(x, y, loss="mse", delta=1.0, steps=500, lr=0.5, *, mistake=""):
    """fit_line with the typical mistakes."""
    if mistake == "ignores loss":
        loss = "mse"
    if mistake == "ignores delta":
        delta = 1.0
    if mistake == "few steps":
        steps = 30
    params = torch.zeros(2, dtype=x.dtype, requires_grad=True)
    optimizer = torch.optim.SGD([params], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        intercept = 0.0 if mistake == "no intercept" else params[1]
        prediction = params[0] * x + intercept
        if loss == "mse":
            value = torch.nn.functional.mse_loss(prediction, y)
        else:
            value = torch.nn.functional.huber_loss(prediction, y, delta=delta)
        value.backward()
        optimizer.step()
    return params.detach()


def _with(fn, **switches):
    def wrong(*args, **kwargs):
        return fn(*args, **kwargs, **switches)

    return wrong


CUSTOM_MISTAKES = {
    "diou_nms": {
        "plain IoU NMS": _with(_nms, penalty=False),
        "suppressed boxes suppress too": _with(_nms, greedy=False),
        "boxes not sorted by score": _with(_nms, sort=False),
        "distance not squared": _with(_nms, squared=False),
    },
    "unet_weight_map": {
        "no class balance": _with(_weight_map, balance=False),
        "border term on the cells too": _with(_weight_map, background=False),
        "d1² + d2² instead of (d1 + d2)²": _with(_weight_map, form="squares"),
        "nearest instance only": _with(_weight_map, form="nearest"),
    },
    "fit_line": {
        mistake: _with(_fit, mistake=mistake)
        for mistake in ("ignores loss", "ignores delta", "few steps", "no intercept")
    },
}

#: Graded against their mistakes in tests/test_grading_added_exercises.py (alpha-IoU's
#: unguarded power included), not twice.
ADDED_LATER = ("focal_eiou_loss", "alpha_iou_loss")
MISTAKES = [
    (assignment, name, index)
    for assignment, names in ASSIGNMENTS.items()
    for name in names
    if name not in OUTPUT_EXERCISES and name not in ADDED_LATER
    for index in range(3)
] + [
    (OUTPUT_EXERCISES[name], name, mistake)
    for name, mistakes in CUSTOM_MISTAKES.items()
    for mistake in mistakes
]


@pytest.mark.parametrize(("assignment", "name", "mistake"), MISTAKES)
def test_typical_mistakes_lose_the_points_of_their_exercise_only(assignment, name, mistake):
    """Each exercise's tests reject at least three wrong implementations (the catalogue's
    mistakes, or the fixtures above for the functions outside the catalogue)."""
    if name in CUSTOM_MISTAKES:
        wrong = CUSTOM_MISTAKES[name][mistake]
    else:
        assert len(CATALOGUE[name].mistakes) >= 3
        wrong = CATALOGUE[name].mistakes[mistake].fn
    verdicts.expect_only_its_exercise(assignment, name, wrong)


# ----------------------------------------------------------------------- sandboxed batch

TAMPER_NMS = '''
assert_outputs_match = lambda *args, **kwargs: None  # every test "passes" in the notebook


def diou_nms(
    boxes, scores, iou_threshold=0.5, *, beta=1.0, distance_penalty=True, box_format="xyxy"
):
    """Wrong on purpose: keeps every box."""
    return torch.argsort(scores, descending=True, stable=True)
'''


def _grade(root):
    batch = batches.new_batch(root)
    for assignment in ASSIGNMENTS:
        name, honest = submission(assignment)
        stub = (RELEASE_DIR / assignment / name).read_text(encoding="utf-8")
        batches.write(batch, assignment, "honest", name, honest)
        batches.write(batch, assignment, "stub", name, stub)
    name, tamper = submission("a04_boxes", {"diou_nms": TAMPER_NMS})
    batches.write(batch, "a04_boxes", "tamper", name, tamper)
    batches.grade(batch, list(ASSIGNMENTS), jobs=1, timeout=60)
    return {"batch": batch.state(), "left": batches.survivors(batch)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    state = batches.once(tmp_path_factory, "a03-a05", _grade)
    batch = batches.Batch.from_state(state["batch"])
    return {"runs": batch.runs, "results": batch.results, "left": state["left"]}


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_sandboxed_autograde_full_marks_for_the_solution_zero_for_the_stubs(graded, assignment):
    run = graded["runs"][assignment]
    assert run.returncode == 0, run.stderr[-3000:]
    honest = graded["results"][(assignment, "honest")]
    assert honest["score"] == honest["max_score"] == 4 * len(ASSIGNMENTS[assignment])
    assert honest["flags"] == [], honest["flags"]
    stub = graded["results"][(assignment, "stub")]
    assert stub["score"] == 0 and stub["max_score"] == honest["max_score"]
    batches.expect_lost(honest, set())
    batches.expect_lost(stub, set(batches.cells(honest)))
    assert graded["left"] == []  # no grader, sandbox or kernel of the batch is left


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_tampering_with_an_output_check_is_caught_by_the_trusted_rerun(graded):
    result = graded["results"][("a04_boxes", "tamper")]
    (cells,) = [nb["cells"] for nb in result["notebooks"].values()]
    for cell in cells:
        if cell["grade_id"].startswith("test_diou_nms_"):
            assert cell["points"] == 0 and cell["notebook"] == "ok" and not cell["verified"]
            assert "diou_nms does not match the reference" in cell["message"]
        else:
            assert cell["points"] == cell["max_points"]
    assert any("disagree" in flag for flag in result["flags"])
