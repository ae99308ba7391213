"""Assignments a06 (synthesis), a07 (adversarial) and a08 (metric learning).

Like ``tests/test_grading.py`` for a01/a02: the release is in sync, the notebooks ask for
the reference signatures, and each exercise's typical wrong implementations (the
catalogue's mistakes; for ``mine_triplets``, which has no catalogue entry, the fixtures
below) lose that exercise's points and only those.  The sandboxed end-to-end batch
(``python -m grading autograde``) grades the instructor's solution (full marks), the
released stubs (0) and one wrong submission per assignment.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch

import cvloss_ref
import cvloss_ref.cases  # fills CATALOGUE (the mistakes below)
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import loss_names
from grading import release
from grading.course import RELEASE_DIR
from grading.demo import submission
from grading.notebooks import BEGIN_HIDDEN, convention_errors, source_notebooks, support_code
from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
from tests import _grading_verdicts as verdicts
from tests._env import skip_unless_ci

FUNCTIONS = {
    "a06_synthesis": [
        "gram_matrix",
        "style_loss",
        "content_loss",
        "total_variation",
        "perceptual_loss",
    ],
    "a07_adversarial": [
        "gan_discriminator_loss",
        "gan_generator_loss",
        "gradient_penalty",
        "cycle_consistency_loss",
    ],
    "a08_metric": [
        "pairwise_distances",
        "contrastive_loss",
        "triplet_margin_loss",
        "batch_hard_triplet_loss",
        "mine_triplets",
        "circle_loss",
    ],
}
ASSIGNMENTS = list(FUNCTIONS)
MAX_SCORES = {"a06_synthesis": 20, "a07_adversarial": 16, "a08_metric": 25}

#: A link to a chapter, at its published address (release writes it from _config.yml).
CHAPTER_LINK = re.compile(r"\]\([^)\s]*/book/[a-z0-9-]+\.html")


def _source(assignment):
    (source,) = source_notebooks(assignment)
    return source


# ----------------------------------------------------------------------- release, layout


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_in_sync_and_strips_solutions_and_hidden_tests(assignment):
    source = _source(assignment)
    assert convention_errors(source) == []
    assert source.max_score == MAX_SCORES[assignment]
    files = release.released_files(assignment)
    assert files
    for relative, text in files.items():
        assert (RELEASE_DIR / relative).read_text(encoding="utf-8") == text
        assert "### BEGIN SOLUTION" not in text
        assert BEGIN_HIDDEN not in text
        assert "HIDDEN_SEED +" not in text and "seed=HIDDEN_SEED" not in text
        assert text.count("raise NotImplementedError()") == len(FUNCTIONS[assignment])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_link_chapters_and_ask_for_the_reference_signatures(assignment):
    source = _source(assignment)
    assert source.solution_ids == FUNCTIONS[assignment]
    intro = source.nb.cells[0].source
    assert CHAPTER_LINK.search(intro)
    for test in source.tests:
        for check in test.checks:
            assert check.function == check.reference
            assert check.forbid, f"{test.grade_id} names no forbidden built-in"
            if check.kind == "loss":
                assert check.reference in loss_names()
    for cell in source.nb.cells:
        if cell.cell_type == "markdown" and cell.id.endswith("_task"):
            assert "off limits" in cell.source and "*Hint:*" in cell.source
            assert CHAPTER_LINK.search(cell.source)
    namespace: dict = {}
    exec(support_code(source), namespace)
    for cell in source.nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)
    for name in source.solution_ids:
        student = list(inspect.signature(namespace[name]).parameters)
        reference = list(inspect.signature(getattr(cvloss_ref, name)).parameters)
        assert student == reference[: len(student)], name


# ----------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_grader_passes_the_instructor_solution_on_every_cell(assignment):
    """The grader's verification (``_verify``) of the solution, in this process, cell by
    cell: each cell passes and calls the function it checks, and that one only (a
    solution that called another exercise's function would pass that one's mistakes on)."""
    verdicts.expect_instructor_passes_every_cell(assignment)


MISTAKES = [
    (assignment, name, index)
    for assignment, names in FUNCTIONS.items()
    for name in names
    if name != "mine_triplets"
    for index in range(3)
]


@pytest.mark.parametrize(("assignment", "name", "index"), MISTAKES)
def test_typical_mistakes_lose_the_points_of_their_exercise_only(assignment, name, index):
    mistakes = CATALOGUE[name].mistakes
    assert len(mistakes) >= 3
    verdicts.expect_only_its_exercise(assignment, name, mistakes[index].fn)


# mine_triplets has no catalogue entry: its typical mistakes are written here.


def _distances(x):
    return cvloss_ref.pairwise_distances(x)  # not forbidden (only the reference and cdist)


def _masks(labels, own_positive=False):
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool)
    return (same if own_positive else same & ~eye), ~same


def _hard(dist, positive, negative):
    hardest_pos = torch.where(positive, dist, -1.0).argmax(1)
    hardest_neg = torch.where(negative, dist, torch.inf).argmin(1)
    anchors = (positive.any(1) & negative.any(1)).nonzero().squeeze(1)
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def _brute_force(embeddings, labels, margin=1.0, strategy="semihard", own_positive=False):
    """Every (a, p, n) compared at once: a (B, B, B) tensor; right indices otherwise."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels, own_positive)
    if strategy == "hard":
        return _hard(dist, positive, negative)
    d_ap, d_an = dist.unsqueeze(2), dist.unsqueeze(1)
    semi = positive.unsqueeze(2) & negative.unsqueeze(1) & (d_an > d_ap) & (d_an < d_ap + margin)
    return _nearest_per_anchor(dist, semi)


def _nearest_per_anchor(dist, semi, farthest=False):
    """For each pair (a, p) with a candidate in semi[a, p], the nearest (farthest) one."""
    a_all, p_all, n_all = [], [], []
    for a in range(dist.shape[0]):
        values = dist[a].unsqueeze(0).expand_as(semi[a])
        fill = -torch.inf if farthest else torch.inf
        candidates = torch.where(semi[a], values, fill)
        best = candidates.max(dim=1) if farthest else candidates.min(dim=1)
        (positives,) = torch.isfinite(best.values).nonzero(as_tuple=True)
        a_all.append(torch.full_like(positives, a))
        p_all.append(positives)
        n_all.append(best.indices[positives])
    return torch.cat(a_all), torch.cat(p_all), torch.cat(n_all)


def mining_cubic_memory(embeddings, labels, margin=1.0, strategy="semihard"):
    return _brute_force(embeddings, labels, margin, strategy)


def mining_own_positive(embeddings, labels, margin=1.0, strategy="semihard"):
    """The anchor counted as its own positive (the diagonal left in the mask)."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels, own_positive=True)
    if strategy == "hard":
        return _hard(dist, positive, negative)
    sorted_neg, order = torch.sort(torch.where(negative, dist, torch.inf), dim=1, stable=True)
    first = torch.searchsorted(sorted_neg, dist, right=True).clamp(max=len(labels) - 1)
    keep = positive & torch.isfinite(sorted_neg.gather(1, first))
    keep &= sorted_neg.gather(1, first) < dist + margin
    anchors, positives = keep.nonzero(as_tuple=True)
    return anchors, positives, order[anchors, first[anchors, positives]]


def mining_fallback_to_hardest(embeddings, labels, margin=1.0, strategy="semihard"):
    """FaceNet's TensorFlow code: pairs without a semi-hard negative get the hardest one."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels)
    if strategy == "hard":
        return _hard(dist, positive, negative)
    sorted_neg, order = torch.sort(torch.where(negative, dist, torch.inf), dim=1, stable=True)
    first = torch.searchsorted(sorted_neg, dist, right=True).clamp(max=len(labels) - 1)
    semi = positive & (sorted_neg.gather(1, first) < dist + margin)
    a, p = semi.nonzero(as_tuple=True)
    n = order[a, first[a, p]]
    found = torch.zeros_like(positive)
    found[a, p] = True
    chosen = torch.full_like(dist, -1, dtype=torch.long)
    chosen[a, p] = n
    hardest = torch.where(negative, dist, torch.inf).argmin(1)
    keep = positive & negative.any(1, keepdim=True)
    chosen = torch.where(found, chosen, hardest.unsqueeze(1).expand_as(chosen))
    anchors, positives = keep.nonzero(as_tuple=True)
    return anchors, positives, chosen[anchors, positives]


def mining_farthest_semihard(embeddings, labels, margin=1.0, strategy="semihard"):
    """The farthest negative inside the margin instead of the nearest; batch-hard with the
    nearest positive."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels)
    if strategy == "hard":
        nearest = torch.where(positive, dist, torch.inf).argmin(1)
        a, _, n = _hard(dist, positive, negative)
        return a, nearest[a], n
    rows = []
    for a in range(dist.shape[0]):  # (B, B) per anchor: this mistake is not about memory
        d_ap, d_an = dist[a].unsqueeze(1), dist[a].unsqueeze(0)
        rows.append(positive[a].unsqueeze(1) & negative[a] & (d_an > d_ap) & (d_an < d_ap + margin))
    a_all, p_all, n_all = [], [], []
    for a, semi in enumerate(rows):
        best = torch.where(semi, dist[a].expand_as(semi), -torch.inf).max(dim=1)
        (positives,) = torch.isfinite(best.values).nonzero(as_tuple=True)
        a_all.append(torch.full_like(positives, a))
        p_all.append(positives)
        n_all.append(best.indices[positives])
    return torch.cat(a_all), torch.cat(p_all), torch.cat(n_all)


MINING_MISTAKES = [
    mining_cubic_memory,
    mining_own_positive,
    mining_fallback_to_hardest,
    mining_farthest_semihard,
]


@pytest.mark.parametrize("wrong", MINING_MISTAKES, ids=lambda f: f.__name__)
def test_typical_mining_mistakes_lose_the_points_of_mine_triplets_only(wrong):
    verdicts.expect_only_its_exercise("a08_metric", "mine_triplets", wrong)


def test_cubic_memory_mining_fails_only_the_memory_checks():
    result = verdicts.verdicts("a08_metric", {"mine_triplets": mining_cubic_memory})
    assert {g: ok for g, ok in result.items() if g.startswith("test_mine_triplets_")} == {
        "test_mine_triplets_hard": True,
        "test_mine_triplets_semihard": True,
        "test_mine_triplets_memory": False,
        "test_mine_triplets_hidden": False,
    }
    assert all(ok for g, ok in result.items() if not g.startswith("test_mine_triplets_"))


# ----------------------------------------------------------------------- sandboxed batch

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
WRONG = {
    # a07: the critic's gradient without create_graph (the callable is rebuilt remotely).
    "a07_adversarial": {
        "gradient_penalty": '''
def gradient_penalty(critic, real, fake, weight=10.0, reduction="mean", *, epsilon=None):
    """Wrong on purpose: the gradient has no graph (create_graph=False)."""
    eps = epsilon.reshape((real.shape[0],) + (1,) * (real.dim() - 1))
    with torch.enable_grad():
        x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, allow_unused=True)
    grad = torch.zeros_like(x_hat) if grad is None else grad
    squared = (grad * grad).flatten(1).sum(1)
    norm = torch.where(squared > 0, torch.sqrt(squared.clamp_min(1e-30)), 0.0)
    return reduce_loss(weight * (norm - 1) ** 2, reduction)
'''
    },
    # a06: a Gram matrix that correlates positions, not channels.
    "a06_synthesis": {
        "gram_matrix": '''
def gram_matrix(features, normalize=True):
    """Wrong on purpose: F^T F."""
    flat = features.flatten(2)
    gram = flat.transpose(1, 2) @ flat
    return gram / (flat.shape[1] * flat.shape[2]) if normalize else gram
'''
    },
}
WRONG["a08_metric"] = {"mine_triplets": None}
WRONG["a08_metric"]["mine_triplets"] = '''
def mine_triplets(embeddings, labels, margin=1.0, strategy="semihard"):
    """Wrong on purpose: every (a, p, n) compared at once, a (B, B, B) tensor."""
    with torch.no_grad():
        x = embeddings - embeddings.mean(0, keepdim=True)
        gram = x @ x.T
        sq = gram.diagonal()
        dist = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * gram).clamp_min(0)
        eye = torch.eye(len(labels), dtype=torch.bool)
        dist = torch.where(eye | (dist <= 1e-12), 0.0, dist.clamp_min(1e-30).sqrt())
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    positive, negative = same & ~torch.eye(len(labels), dtype=torch.bool), ~same
    if strategy == "hard":
        hardest_pos = torch.where(positive, dist, -1.0).argmax(1)
        hardest_neg = torch.where(negative, dist, torch.inf).argmin(1)
        anchors = (positive.any(1) & negative.any(1)).nonzero().squeeze(1)
        return anchors, hardest_pos[anchors], hardest_neg[anchors]
    d_ap, d_an = dist.unsqueeze(2), dist.unsqueeze(1)
    semi = positive.unsqueeze(2) & negative.unsqueeze(1) & (d_an > d_ap) & (d_an < d_ap + margin)
    out = [], [], []
    for a in range(len(labels)):
        best = torch.where(semi[a], dist[a].expand_as(semi[a]), torch.inf).min(dim=1)
        (positives,) = torch.isfinite(best.values).nonzero(as_tuple=True)
        out[0].append(torch.full_like(positives, a))
        out[1].append(positives)
        out[2].append(best.indices[positives])
    return tuple(torch.cat(parts) for parts in out)
'''
#: The exercise each WRONG submission gets wrong, and the points it must lose.
WRONG_POINTS = {"a06_synthesis": 4, "a07_adversarial": 4, "a08_metric": 3}


def _stub_submission(assignment):
    name, _ = submission(assignment)
    return name, (RELEASE_DIR / assignment / name).read_text(encoding="utf-8")


def _grade(root):
    batch = batches.new_batch(root)
    for assignment in ASSIGNMENTS:
        for student, (name, text) in {
            "honest": submission(assignment),
            "stubs": _stub_submission(assignment),
            "wrong": submission(assignment, WRONG[assignment]),
        }.items():
            batches.write(batch, assignment, student, name, text)
    batches.grade(batch, ASSIGNMENTS, jobs=1, timeout=120)
    return {"batch": batch.state(), "left": batches.survivors(batch)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not bwrap_works():
        skip_unless_ci("bubblewrap is not installed or cannot run here")
    state = batches.once(tmp_path_factory, "a06-a08", _grade)
    batch = batches.Batch.from_state(state["batch"])
    return {"runs": batch.runs, "results": batch.results, "left": state["left"]}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_sandboxed_batch_gives_full_marks_to_the_solution_and_zero_to_the_stubs(graded, assignment):
    run = graded["runs"][assignment]
    assert run.returncode == 0, run.stderr[-3000:]
    honest = graded["results"][(assignment, "honest")]
    assert honest["score"] == honest["max_score"] == MAX_SCORES[assignment], honest
    assert honest["flags"] == []
    stubs = graded["results"][(assignment, "stubs")]
    assert stubs["score"] == 0 and stubs["max_score"] == MAX_SCORES[assignment]
    batches.expect_lost(honest, set())
    batches.expect_lost(stubs, set(batches.cells(honest)))
    assert graded["left"] == []  # no grader, sandbox or kernel of the batch is left


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_sandboxed_batch_takes_a_wrong_exercise_s_points_only(graded, assignment):
    result = graded["results"][(assignment, "wrong")]
    (wrong_function,) = WRONG[assignment]
    mine = {t.grade_id for t in _source(assignment).tests if wrong_function in t.functions}
    batches.expect_lost(result, mine, within=True)  # every other exercise keeps its points
    assert result["score"] == MAX_SCORES[assignment] - WRONG_POINTS[assignment]
