"""The grading pipeline without sandboxes: layout, release/check, parsing, scoring, feedback.

The end-to-end sandboxed runs are in ``tests/test_grading_sandbox.py``.
"""

from __future__ import annotations

import json
import zipfile

import nbformat
import pytest

import cvloss_ref
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import check_loss, loss_names
from grading import cli, collect, feedback, release
from grading.autograde import _read_submission, _solutions, _static_flags, graded_notebook
from grading.course import RELEASE_DIR, SOURCE_DIR
from grading.demo import submission
from grading.notebooks import (
    BEGIN_HIDDEN,
    convention_errors,
    parse_checks,
    source_notebooks,
)

ASSIGNMENTS = ["a01_information", "a02_classification"]


def test_nbgrader_config_makes_the_repository_the_course_root():
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(SOURCE_DIR.parent / "grading"))
    c = config.load_config()
    assert c.CourseDirectory.source_directory == "solutions"
    assert c.CourseDirectory.release_directory == "exercises"
    assert c.CourseDirectory.submitted_directory == "grading/submitted"
    assert c.CourseDirectory.db_url.endswith("grading/gradebook.db")


def test_exercises_are_up_to_date_and_sources_follow_the_conventions():
    assert release.check() == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_strips_solutions_and_hidden_tests(assignment):
    for relative, text in release.released_files(assignment).items():
        assert (RELEASE_DIR / relative).read_text(encoding="utf-8") == text
        assert "### BEGIN SOLUTION" not in text
        assert BEGIN_HIDDEN not in text
        assert "seed=HIDDEN_SEED" not in text
        assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_ask_for_the_reference_signatures(assignment):
    import inspect

    (source,) = source_notebooks(assignment)
    assert not convention_errors(source)
    assert len(source.solution_ids) == 4
    for test in source.tests:
        for check in test.checks:
            assert check.reference in loss_names()
            assert check.function == check.reference
            assert check.forbid, f"{test.grade_id} names no forbidden built-in"
    namespace: dict = {}
    from grading.notebooks import support_code

    exec(support_code(source), namespace)
    for cell in source.nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)
    for name in source.solution_ids:
        student = list(inspect.signature(namespace[name]).parameters)
        reference = list(inspect.signature(getattr(cvloss_ref, name)).parameters)
        assert student == reference[: len(student)] or set(student) <= set(reference)
        assert reference[: len(student) - 1] == student[: len(student) - 1] or name in (
            "entropy",
            "cross_entropy_dist",
            "kl_divergence",
            "js_divergence",
        )


def test_check_reports_a_stale_release(monkeypatch, tmp_path):
    for assignment in ASSIGNMENTS:
        (tmp_path / assignment).mkdir()
    monkeypatch.setattr(release, "RELEASE_DIR", tmp_path)
    problems = release.check()
    assert any("is missing" in p for p in problems)
    release.release()
    assert release.check() == []
    path = next(tmp_path.glob("a01_information/*.ipynb"))
    path.write_text(path.read_text().replace("Entropy", "Entropie"))
    assert any("out of date" in p for p in release.check())


def test_conventions_catch_an_unlocked_test_cell_without_docstring():
    (source,) = source_notebooks("a01_information")
    for cell in source.nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_entropy_random":
            cell.metadata.nbgrader["locked"] = False
            cell.source = cell.source.split("\n", 1)[1]
    errors = convention_errors(source)
    assert any("must be locked" in e for e in errors)
    assert any("docstring" in e for e in errors)


def test_parse_checks_reads_cases_params_and_hidden_regions():
    source = (
        '"""Check it"""\n'
        'assert_loss_matches(f, "hinge_loss", forbid=[F.multi_margin_loss], cases=["a"])\n'
        f"{BEGIN_HIDDEN}\n"
        'assert_loss_matches(f, "hinge_loss", forbid=["x"], seed=SEED, margin=0.5)\n'
        "### END HIDDEN TESTS\n"
    )
    visible, hidden = parse_checks(source)
    assert visible.cases == ("a",) and not visible.hidden
    assert visible.forbid == ("F.multi_margin_loss",)
    assert hidden.hidden and hidden.params == (("margin", 0.5),)


# ----------------------------------------------------------------------- submissions


def test_graded_notebook_restores_edited_and_deleted_test_cells():
    (source,) = source_notebooks("a01_information")
    _, text = submission("a01_information")
    nb = nbformat.reads(text, as_version=4)
    nb.cells = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_entropy_random"
    ]
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_kl_divergence_random":
            cell.source = "pass"
    solutions, flags = _solutions(nb, source)
    assert set(solutions) == set(source.solution_ids)
    assert any("edited" in f and "test_kl_divergence_random" in f for f in flags)
    assert any("deleted" in f and "test_entropy_random" in f for f in flags)
    graded = graded_notebook(source, solutions)
    text = nbformat.writes(graded)
    assert "seed=HIDDEN_SEED" in text  # hidden tests are back
    assert text.count("assert_loss_matches(kl_divergence") == 3


def test_static_scan_flags_imports_of_the_reference():
    flags = _static_flags({"entropy": "from cvloss_ref import entropy as e\n%time x = 1"})
    assert flags == ["entropy imports cvloss_ref"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\x89PNG\r\n\x1a\n", b'{"cells": 3, "metadata": {}}', b""],
    ids=["truncated", "binary", "bad-cells", "empty"],
)
def test_corrupt_notebooks_are_refused_with_a_reason(tmp_path, content):
    path = tmp_path / "information.ipynb"
    path.write_bytes(content)
    nb, problem = _read_submission(path)
    assert nb is None and "not a valid notebook" in problem


# ----------------------------------------------------------------------- mistakes


def _verdicts(assignment, functions):
    """Per test cell: does check_loss (as the trusted verification runs it) pass?"""
    (source,) = source_notebooks(assignment)
    out = {}
    for index, test in enumerate(source.tests):
        ok = True
        for check in test.checks:
            if check.function not in functions:
                continue
            result = check_loss(
                functions[check.function],
                check.reference,
                devices=["cpu"],
                cases=check.cases,
                seed=101 + index,
                **dict(check.params),
            )
            ok = ok and result.ok
        out[test.grade_id] = ok
    return source, out


MISTAKES = [
    (assignment, name, index)
    for assignment, names in {
        "a01_information": ["entropy", "cross_entropy_dist", "kl_divergence", "js_divergence"],
        "a02_classification": [
            "cross_entropy",
            "binary_cross_entropy_with_logits",
            "sigmoid_focal_loss",
            "hinge_loss",
        ],
    }.items()
    for name in names
    for index in range(3)
]


@pytest.mark.parametrize(("assignment", "name", "index"), MISTAKES)
def test_typical_mistakes_lose_the_points_of_their_exercise_only(assignment, name, index):
    """Each exercise's tests reject at least three catalogued wrong implementations."""
    mistakes = CATALOGUE[name].mistakes
    assert len(mistakes) >= 3
    wrong = mistakes[index].fn
    source, verdicts = _verdicts(assignment, {name: wrong})
    mine = [t for t in source.tests if name in t.functions]
    others = [t for t in source.tests if name not in t.functions]
    assert not all(verdicts[t.grade_id] for t in mine), f"{wrong.__name__} passes every test"
    hidden = next(t for t in mine if t.hidden)
    assert not verdicts[hidden.grade_id]
    # Test cells of the other exercises never call this function.
    assert all(name not in t.functions for t in others)


# ----------------------------------------------------------------------- feedback, collect


def test_feedback_escapes_and_never_shows_test_code():
    result = {
        "student": "mallory<script>",
        "assignment": "a01_information",
        "notebooks": {
            "information": {
                "score": 1,
                "max_score": 3,
                "reason": "",
                "cells": [
                    {
                        "grade_id": "test_entropy_hidden",
                        "description": "Check entropy on every case",
                        "hidden": True,
                        "points": 0,
                        "max_points": 2,
                        "message": "entropy does not match <b>the reference</b>",
                    }
                ],
            }
        },
    }
    page = feedback.render(result, "information", {"entropy": "x = '</pre><script>'"})
    assert "<script>" not in page
    assert "&lt;b&gt;the reference&lt;/b&gt;" in page
    assert "seed=HIDDEN_SEED" not in page and "assert_loss_matches" not in page


def test_collect_imports_a_zip_named_by_student(tmp_path, monkeypatch):
    monkeypatch.setattr(collect, "SUBMITTED_DIR", tmp_path / "submitted")
    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alice_information.ipynb", "{}")
        zf.writestr("bob_attempt_2024-01-01-10-00-00_information.ipynb", "old")
        zf.writestr("bob_attempt_2024-01-02-10-00-00_information.ipynb", "new")
        zf.writestr("../evil_information.ipynb", "x")
        zf.writestr("carol/information.ipynb", "{}")
        zf.writestr("readme.txt", "ignored")
    imported = collect.collect("a01_information", archive)
    assert sorted(imported) == ["alice", "bob", "carol"]
    bob = tmp_path / "submitted" / "bob" / "a01_information"
    assert (bob / "information.ipynb").read_text() == "new"
    assert not (tmp_path / "evil_information.ipynb").exists()


def test_cli_help_and_unknown_assignment(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["autograde", "a99_nothing"])
    assert info.value.code == 2
    assert "unknown assignment" in capsys.readouterr().err


def test_export_and_report_read_the_gradebook(tmp_path, monkeypatch):
    from grading import gradebook

    url = f"sqlite:///{tmp_path / 'gb.db'}"
    sources = source_notebooks("a01_information")
    result = {
        "student": "alice",
        "assignment": "a01_information",
        "notebooks": {
            "information": {
                "cells": [
                    {"grade_id": t.grade_id, "points": t.points, "message": ""}
                    for t in sources[0].tests
                ]
            }
        },
    }
    gradebook.record(result, sources, url)
    gradebook.record(result, sources, url)  # idempotent
    (row,) = gradebook.scores(url)
    assert row == {
        "student": "alice",
        "assignment": "a01_information",
        "score": 16.0,
        "max_score": 16.0,
    }
    out = tmp_path / "grades.csv"
    assert cli.main(["--db", url, "export", "--output", str(out)]) == 0
    assert "alice,a01_information,16,16" in out.read_text()
    json.dumps(row)


def test_bundled_demo_submissions_match_the_current_sources(tmp_path, monkeypatch):
    """grading/demo/ must be rebuilt (python -m grading.demo build) when the sources change,
    or the honest demo student is flagged for edited test cells."""
    import grading.demo as demo
    from grading.course import DEMO_DIR

    monkeypatch.setattr(demo, "DEMO_DIR", tmp_path / "demo")
    demo.build_demo()
    fresh = {p.relative_to(tmp_path / "demo"): p.read_bytes() for p in tmp_path.rglob("*.ipynb")}
    committed = {p.relative_to(DEMO_DIR): p.read_bytes() for p in DEMO_DIR.rglob("*.ipynb")}
    assert fresh == committed
