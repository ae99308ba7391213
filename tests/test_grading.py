"""The grading pipeline without sandboxes: layout, release/check, parsing, scoring, feedback.

The end-to-end sandboxed runs are in ``tests/test_grading_sandbox.py``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile

import nbformat
import pytest

import cvloss_ref
import cvloss_ref.cases  # fills CATALOGUE (the mistakes below)
import cvloss_ref.exercises
from cvloss_ref._catalogue import CATALOGUE
from cvloss_ref.testing import loss_names
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
from grading.results import FAILED, PASSED, CellResult, NotebookResult, SubmissionResult
from tests import _grading_verdicts as verdicts

ASSIGNMENTS = ["a01_information", "a02_classification"]
#: The exercises outside the catalogue, and the function of cvloss_ref.exercises they match.
OUTPUT_REFERENCES = {
    "weighted_reduce": cvloss_ref.exercises.weighted_reduce,
    "numerical_gradient": cvloss_ref.exercises.central_difference,
}


def test_nbgrader_config_makes_the_repository_the_course_root(monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.delenv("CVLOSS_GRADEBOOK_URL", raising=False)  # the default gradebook

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
    assert len(source.solution_ids) == {"a01_information": 6, "a02_classification": 7}[assignment]
    for test in source.tests:
        for check in test.checks:
            if check.kind == "outputs":  # checked against cvloss_ref.exercises
                continue
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
        reference_fn = OUTPUT_REFERENCES.get(name) or getattr(cvloss_ref, name)
        reference = list(inspect.signature(reference_fn).parameters)
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
    assert any("test cells must be read-only" in e for e in errors)
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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_grader_passes_the_instructor_solution_on_every_cell(assignment):
    """The grader's verification (``_verify``) of the solution, in this process, cell by
    cell: each cell passes and calls the function it checks, and that one only."""
    source = verdicts.source(assignment)
    record = verdicts.instructor(assignment)
    assert set(record) == {t.grade_id for t in source.tests}
    for test in source.tests:
        passed, called = record[test.grade_id]
        assert passed, test.grade_id
        assert called == set(test.functions), test.grade_id


@pytest.mark.parametrize(("assignment", "name", "index"), MISTAKES)
def test_typical_mistakes_lose_the_points_of_their_exercise_only(assignment, name, index):
    """Each exercise's tests reject at least three catalogued wrong implementations, and
    the grader's verdicts on every other test cell stay True."""
    mistakes = CATALOGUE[name].mistakes
    assert len(mistakes) >= 3
    verdicts.expect_only_its_exercise(assignment, name, mistakes[index].fn)


@pytest.mark.parametrize("name", ["style_loss", "content_loss"])
def test_the_verification_process_differentiates_tensors_inside_lists(tmp_path, name):
    """The trusted verification (RemoteFunction and _verifier.py, here without bubblewrap)
    on the catalogue's multi-layer cases, whose inputs are lists of feature maps: the
    gradients of the tensors inside the lists come back from the verification process
    (they did not: the instructor's solution failed as "not connected to the graph")."""
    from cvloss_ref.testing import _spec, check_loss
    from grading.notebooks import support_code
    from grading.remote import RemoteFunction, Verifier

    (source,) = source_notebooks("a06_synthesis")
    cells = verdicts.solution_cells(source)
    chunks = [("support", support_code(source))] + [(g, cells[g]) for g in source.solution_ids]
    layered = [c.name for c in _spec(name).cases if "layers" in c.name]
    assert len(layered) >= 2
    verifier = Verifier(tmp_path, chunks, unsafe=True, timeout=60)
    verifier.start()
    try:
        assert verifier.load_errors == {}
        result = check_loss(RemoteFunction(verifier, name), name, devices=["cpu"], cases=layered)
    finally:
        verifier.close()
    assert result.ok, result.message()
    assert len(result.passed) >= 2 * len(layered)  # float32 and float64, every case


# ----------------------------------------------------------------------- feedback, collect


def test_feedback_escapes_and_never_shows_test_code():
    cell = CellResult(
        grade_id="test_entropy_hidden",
        description="Check entropy on every case",
        hidden=True,
        points=0,
        max_points=2,
        status=FAILED,
        message="entropy does not match <b>the reference</b>",
    )
    result = SubmissionResult("mallory<script>", "a01_information", max_score=3, score=1)
    result.notebooks["information"] = NotebookResult(max_score=3, score=1, cells=[cell])
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
    imported = collect.collect("a01_information", archive).imported
    assert sorted(imported) == ["alice", "bob", "carol"]
    bob = tmp_path / "submitted" / "bob" / "a01_information"
    assert (bob / "information.ipynb").read_text() == "new"
    assert not (tmp_path / "evil_information.ipynb").exists()


SUBCOMMANDS = {
    "release": ["ASSIGNMENT"],
    "check": [],
    "autograde": [
        "assignment",
        "--jobs",
        "--timeout",
        "--student",
        "--unsafe-no-sandbox",
        "--no-progress",
    ],
    "feedback": ["assignment"],
    "collect": ["assignment", "ARCHIVE_OR_DIR"],
    "export": ["--output"],
    "report": ["assignment"],
}


def test_cli_help_lists_the_subcommands_and_their_options(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m grading")
    assert "--db URL" in out
    listed = re.findall(r"^    ([a-z]+)\b", out, flags=re.MULTILINE)
    assert listed == list(SUBCOMMANDS)
    assert "list flagged submissions of an assignment" in out  # each with its one-line help
    for command, options in SUBCOMMANDS.items():
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0, command
        out = capsys.readouterr().out
        assert out.startswith(f"usage: python -m grading {command}"), out
        for option in options:
            assert option in out, (command, option)


def test_cli_help_runs_as_a_module():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "grading", "--help"],
        cwd=SOURCE_DIR.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert all(command in done.stdout for command in SUBCOMMANDS)


def test_cli_refuses_an_unknown_assignment_or_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["autograde", "a99_nothing"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown assignment 'a99_nothing'" in err and "a01_information" in err
    with pytest.raises(SystemExit) as info:
        cli.main(["grade"])
    assert info.value.code == 2
    assert "invalid choice: 'grade'" in capsys.readouterr().err


def test_export_and_report_read_the_gradebook_and_the_results(tmp_path, monkeypatch, capsys):
    from grading import gradebook

    monkeypatch.delenv("CVLOSS_GRADEBOOK_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    sources = source_notebooks("a01_information")
    tests = sources[0].tests

    def graded(student: str, lost: str = "") -> SubmissionResult:
        """Every test cell earned its points but those of function ``lost``."""
        result = SubmissionResult(student, "a01_information", max_score=24.0)
        cells = []
        for t in tests:
            passed = not (lost and t.grade_id.startswith(f"test_{lost}_"))
            points = t.points if passed else 0.0
            status = PASSED if passed else FAILED
            cells.append(CellResult(t.grade_id, t.description, t.hidden, points, t.points, status))
        result.add("information", NotebookResult(24.0, sum(c.points for c in cells), cells))
        return result

    result = graded("alice")
    gradebook.record(result, sources, url)
    gradebook.record(result, sources, url)  # idempotent
    (row,) = gradebook.scores(url)
    assert row == {
        "student": "alice",
        "assignment": "a01_information",
        "score": 24.0,
        "max_score": 24.0,
    }
    json.dumps(row)
    # report reads the autograded results: one clean, one flagged, one not graded.
    autograded = tmp_path / "autograded"
    monkeypatch.setattr(cli, "AUTOGRADED_DIR", autograded)
    monkeypatch.setattr(cli, "SUBMITTED_DIR", tmp_path / "submitted")  # no copies to compare
    results = {
        "alice": {"score": 24.0, "flags": [], "reason": ""},
        "mallory": {
            "score": 20.0,
            "flags": ["notebook and verification disagree: test_entropy_hidden"],
            "reason": "",
        },
        "trudy": {"score": 0.0, "flags": [], "reason": "information.ipynb is not a valid notebook"},
    }
    for student, fields in results.items():
        folder = autograded / student / "a01_information"
        folder.mkdir(parents=True)
        data = {"student": student, "assignment": "a01_information", "max_score": 24.0, **fields}
        (folder / "results.json").write_text(json.dumps(data))
    mallory = graded("mallory", lost="entropy")
    gradebook.record(mallory, sources, url)
    capsys.readouterr()
    assert cli.main(["report", "a01_information"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "mallory: 20/24",
        "  notebook and verification disagree: test_entropy_hidden",
        "trudy: 0/24",
        "  not graded: information.ipynb is not a valid notebook",
    ]
    assert cli.main(["report", "a02_classification"]) == 0
    assert capsys.readouterr().out == "no flagged submissions for a02_classification\n"
    # export: the gradebook's scores, with the flags of the results.
    out = tmp_path / "grades.csv"
    assert cli.main(["--db", url, "export", "--output", str(out)]) == 0
    assert out.read_text().splitlines() == [
        "student,assignment,score,max_score,flags",
        "alice,a01_information,24,24,",
        "mallory,a01_information,20,24,notebook and verification disagree: test_entropy_hidden",
    ]


def test_db_option_holds_for_its_command_only(tmp_path, monkeypatch):
    """--db reaches the command's subprocesses through CVLOSS_GRADEBOOK_URL, and the caller's
    own setting (or its absence) is back once main returns, also after an error."""
    seen = []

    def export(args):
        seen.append(os.environ["CVLOSS_GRADEBOOK_URL"])
        if len(seen) > 2:
            raise RuntimeError("the database went away")
        return 0

    monkeypatch.setattr(cli, "_export", export)  # _parser binds it when main builds it
    url = f"sqlite:///{tmp_path / 'gb.db'}"
    for before in (None, "sqlite:///elsewhere.db", None):
        if before is None:
            monkeypatch.delenv("CVLOSS_GRADEBOOK_URL", raising=False)
        else:
            monkeypatch.setenv("CVLOSS_GRADEBOOK_URL", before)
        if len(seen) < 2:
            assert cli.main(["--db", url, "export", "-o", str(tmp_path / "g.csv")]) == 0
        else:
            with pytest.raises(RuntimeError):
                cli.main(["--db", url, "export", "-o", str(tmp_path / "g.csv")])
        assert seen[-1] == url
        assert os.environ.get("CVLOSS_GRADEBOOK_URL") == before


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
