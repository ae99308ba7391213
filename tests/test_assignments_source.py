"""The notebooks of ``solutions/`` are the only source of each assignment.

They are stored tidy (no outputs, nbformat's layout, Markdown wrapped) and their harness
cells only import what the package provides.  The end-to-end test does to a copy of the
course what an instructor does in JupyterLab with nbgrader's Create Assignment toolbar:
it adds an exercise (task, solution, visible test, hidden test) and changes a hidden test,
then runs ``python -m grading release``, ``check`` and ``autograde`` on two students, as
CONTRIBUTING ("Editing an assignment") tells instructors to.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grading.notebooks import (
    BEGIN_HIDDEN,
    convention_errors,
    load_source,
    parse_checks,
    stored_text,
    tidy,
)
from grading.release import INSTALL_ID
from grading.sandbox import bwrap_works
from tests._env import IN_CI, NO_BWRAP

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "solutions").glob("a*/*.ipynb"))


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


# ----------------------------------------------------------------------- the source


def test_the_notebooks_are_the_only_source():
    assert NOTEBOOKS and len(NOTEBOOKS) == 8
    assert not (ROOT / "grading" / "sources").exists()
    mentions = [
        path
        for path in [*ROOT.glob("grading/**/*.py"), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
        if "grading.sources" in path.read_text(encoding="utf-8")
        or "grading/sources" in path.read_text(encoding="utf-8")
    ]
    assert mentions == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_harness_cells_only_import_from_the_package(path):
    """Test code that notebooks share lives in cvloss_ref: a harness cell is imports and the
    hidden-test seed, nothing defined, nothing private."""
    nb = nbformat.read(str(path), as_version=4)
    harness = [c for c in nb.cells if c.cell_type == "code" and "cvloss_ref" in c.source]
    # The install cell (written by release from _config.yml) names the package it installs.
    harness = [c for c in harness if not _nbgrader(c).get("grade") and c.id != INSTALL_ID]
    assert len(harness) == 1
    (cell,) = harness
    assert _nbgrader(cell)["locked"] and not _nbgrader(cell)["solution"]
    assert len(cell.source.splitlines()) <= 8
    for statement in ast.parse(cell.source).body:
        if isinstance(statement, ast.Assign):
            assert [t.id for t in statement.targets] == ["HIDDEN_SEED"]
        else:
            assert isinstance(statement, (ast.Import, ast.ImportFrom))
            for alias in statement.names:
                assert not alias.name.startswith("_"), alias.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_source_notebooks_are_stored_tidy_and_readable_in_a_diff(path):
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    assert stored_text(nb) == text
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if "outputs" in c)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            # An address is not wrapped: a link's target does not count towards the width.
            long = [
                line
                for line in cell.source.splitlines()
                if len(re.sub(r"\]\([^)\s]+\)", "]()", line)) > 100
            ]
            assert long == [], f"{_nbgrader(cell)['grade_id']}: wrap Markdown at 100 characters"


def test_tidy_drops_outputs_and_what_the_editor_records():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", metadata={"nbgrader": {"grade_id": "x"}})
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    cell.metadata.update(collapsed=True, execution={"iopub.status.idle": "2024"}, tags=[])
    markdown = nbformat.v4.new_markdown_cell("text", metadata={"tags": ["keep"]})
    nb.cells = [cell, markdown]
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.4", "mimetype": "x"}
    tidied = tidy(nb)
    assert tidied.cells[0].outputs == [] and tidied.cells[0].execution_count is None
    assert dict(tidied.cells[0].metadata) == {"nbgrader": {"grade_id": "x"}}
    assert tidied.cells[1].metadata == {"tags": ["keep"]}
    assert tidied.metadata["language_info"] == {"name": "python"}
    assert cell.outputs, "tidy must not change its argument"


def test_checks_read_cases_and_parameters_assigned_in_the_cell():
    source = (
        '"""Check it"""\n'
        'cases = ["a", "b"]\n'
        "smoothing = 0.1\n"
        'assert_loss_matches(f, "hinge_loss", forbid=[F.x], cases=cases, margin=smoothing)\n'
    )
    (check,) = parse_checks(source)
    assert check.cases == ("a", "b") and check.params == (("margin", 0.1),)
    with pytest.raises(ValueError, match="assign undefined a literal above the call"):
        parse_checks('assert_loss_matches(f, "hinge_loss", cases=undefined)')
    with pytest.raises(ValueError, match="cases must be a literal"):
        parse_checks('cases = make()\nassert_loss_matches(f, "hinge_loss", cases=cases)')


def test_a_notebook_importing_a_private_name_breaks_the_conventions(tmp_path):
    path = ROOT / "solutions/a04_boxes/boxes.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    harness = next(c for c in nb.cells if _nbgrader(c).get("grade_id") == "harness")
    harness.source += "\nfrom cvloss_ref.testing import _Guard"
    nbformat.write(nb, str(tmp_path / "boxes.ipynb"))
    errors = convention_errors(load_source(tmp_path / "boxes.ipynb", "a04_boxes"))
    assert errors == [
        "a04_boxes/boxes.ipynb: harness: imports _Guard, a private name of cvloss_ref "
        "(use its public API: cvloss_ref.testing, cvloss_ref.exercises)"
    ]


# ----------------------------------------------------------------------- an edit in JupyterLab

ASSIGNMENT = "a01_information"
NOTEBOOK = "information.ipynb"

TASK = r"""## 5. Self-information

An event of probability $p$ carries $I(p) = -\log p$ of information, in units of
$\log(\text{base})$: nats by default, bits for `base=2`."""

SOLUTION = '''def self_information(p, base=math.e):
    """Self-information -log p of probabilities p, in units of log(base)."""
    ### BEGIN SOLUTION
    return -torch.log(p) / math.log(base)
    ### END SOLUTION'''

VISIBLE = '''"""Check self_information on random probabilities and certain events"""
cases = ["random probabilities (8,)", "certain events (p = 1)"]
assert_loss_matches(self_information, "self_information", forbid=[], cases=cases)'''

HIDDEN = f'''"""Check self_information on every case, with inputs drawn at grading time"""
{BEGIN_HIDDEN}
assert_loss_matches(self_information, "self_information", forbid=[], seed=HIDDEN_SEED)
### END HIDDEN TESTS'''

#: Added to the hidden test of entropy, whose points go from 2 to 3.
HIDDEN_IN_HARTLEYS = (
    'assert_loss_matches(entropy, "entropy", forbid=[torch.special.entr], seed=HIDDEN_SEED, '
    "base=10.0)"
)

#: Right in nats and bits, wrong in any other base: only the changed hidden test sees it.
BITS_ONLY = '''def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Entropy in nats, or in bits for base=2."""
    nonzero = p != 0
    safe_p = torch.where(nonzero, p, torch.ones_like(p))
    log = torch.log2 if base == 2 else torch.log
    terms = torch.where(nonzero, p * log(safe_p), torch.zeros_like(p))
    return reduce_loss(-terms.sum(dim), reduction)
'''

NO_MINUS = '''def self_information(p, base=math.e):
    """Forgets the minus sign."""
    return torch.log(p) / math.log(base)
'''


def _toolbar_metadata(grade_id, *, solution=False, grade=False, locked=False, points=None):
    """What nbgrader's Create Assignment toolbar writes into a cell."""
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


def _edit_in_jupyterlab(path: Path) -> None:
    """Add an exercise after the last one and change entropy's hidden test; the notebook is
    saved as JupyterLab saves it after a run (outputs, execution metadata)."""
    nb = nbformat.read(str(path), as_version=4)
    new = [
        nbformat.v4.new_markdown_cell(
            TASK, metadata=_toolbar_metadata("self_information_task", locked=True)
        ),
        nbformat.v4.new_code_cell(
            SOLUTION, metadata=_toolbar_metadata("self_information", solution=True)
        ),
        nbformat.v4.new_code_cell(
            VISIBLE,
            metadata=_toolbar_metadata(
                "test_self_information_random", grade=True, locked=True, points=1
            ),
        ),
        nbformat.v4.new_code_cell(
            HIDDEN,
            metadata=_toolbar_metadata(
                "test_self_information_hidden", grade=True, locked=True, points=2
            ),
        ),
    ]
    new[2].execution_count = 42
    new[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="passed\n")]
    new[2].metadata["execution"] = {"iopub.status.idle": "2024-05-01T10:00:00.000Z"}
    nb.cells.extend(new)
    hidden = next(c for c in nb.cells if _nbgrader(c).get("grade_id") == "test_entropy_hidden")
    hidden.source = hidden.source.replace(
        "### END HIDDEN TESTS", f"{HIDDEN_IN_HARTLEYS}\n### END HIDDEN TESTS"
    )
    hidden.metadata["nbgrader"]["points"] = 3
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.4"}
    nbformat.write(nb, str(path))


def _run(course: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, CVLOSS_GRADING_DIR=str(course / "work"))
    return subprocess.run(
        [sys.executable, "-m", "grading", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _copy_course(course: Path) -> Path:
    """A copy of the course (its nbgrader configuration, grading/, one assignment) in
    ``course``."""
    shutil.copytree(
        ROOT / "grading",
        course / "grading",
        ignore=shutil.ignore_patterns(
            "__pycache__", "demo", "submitted", "autograded", "feedback", "gradebook.db*", "*.csv"
        ),
    )
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / ASSIGNMENT, course / folder / ASSIGNMENT)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    # release writes the links and the install cell from the book's settings.
    shutil.copy(ROOT / "_config.yml", course / "_config.yml")
    shutil.copytree(ROOT / "book", course / "book", ignore=shutil.ignore_patterns("_static"))
    return course


def _submit(course: Path, student: str, replace: dict[str, str] | None = None) -> None:
    """``student`` submits the released notebook with every answer of the course's source,
    except those of ``replace`` (grade_id -> code)."""
    source = nbformat.read(str(course / "solutions" / ASSIGNMENT / NOTEBOOK), as_version=4)
    answers = {_nbgrader(c)["grade_id"]: c.source for c in source.cells if _nbgrader(c)["solution"]}
    answers.update(replace or {})
    nb = nbformat.read(str(course / "exercises" / ASSIGNMENT / NOTEBOOK), as_version=4)
    for cell in nb.cells:
        if _nbgrader(cell).get("solution"):
            cell.source = answers[_nbgrader(cell)["grade_id"]]
    folder = course / "work" / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, str(folder / NOTEBOOK))


def _autograde(course: Path) -> subprocess.CompletedProcess:
    return _run(course, "autograde", ASSIGNMENT, "--jobs", "2", "--no-progress", timeout=540)


@pytest.fixture(scope="module")
def edited_course(tmp_path_factory):
    """A copy of the course graded once (student "early"), then edited as in JupyterLab and
    released: the exercise is added after a batch was graded."""
    course = _copy_course(tmp_path_factory.mktemp("course"))
    _submit(course, "early")
    first = _autograde(course) if bwrap_works() or IN_CI else None
    _edit_in_jupyterlab(course / "solutions" / ASSIGNMENT / NOTEBOOK)
    before = _run(course, "check")
    release = _run(course, "release")
    after = _run(course, "check")
    return {"course": course, "first": first, "before": before, "release": release, "after": after}


def test_release_takes_the_edit_to_exercises_without_the_hidden_parts(edited_course):
    course = edited_course["course"]
    assert edited_course["before"].returncode == 1
    assert f"exercises/{ASSIGNMENT}/{NOTEBOOK} is out of date" in edited_course["before"].stderr
    assert "holds outputs or editor metadata" in edited_course["before"].stderr
    assert edited_course["release"].returncode == 0, edited_course["release"].stderr
    assert edited_course["after"].returncode == 0, edited_course["after"].stderr

    source_text = (course / "solutions" / ASSIGNMENT / NOTEBOOK).read_text(encoding="utf-8")
    source = nbformat.reads(source_text, as_version=4)
    assert stored_text(source) == source_text  # tidied: no outputs, no editor metadata
    by_id = {_nbgrader(c)["grade_id"]: c for c in source.cells}
    assert by_id["test_self_information_random"].outputs == []
    assert HIDDEN_IN_HARTLEYS in by_id["test_entropy_hidden"].source  # the edit survives

    released = nbformat.read(str(course / "exercises" / ASSIGNMENT / NOTEBOOK), as_version=4)
    cells = {_nbgrader(c)["grade_id"]: c for c in released.cells}
    assert list(cells) == list(by_id)
    assert cells["self_information_task"].source == TASK
    assert cells["test_self_information_random"].source == VISIBLE
    stub = cells["self_information"].source
    assert stub.startswith("def self_information(p, base=math.e):")
    assert "raise NotImplementedError()" in stub and "-torch.log(p)" not in stub
    for grade_id in ("test_self_information_hidden", "test_entropy_hidden"):
        assert cells[grade_id].source.startswith('"""Check ')
        assert "HIDDEN_SEED" not in cells[grade_id].source
    text = json.dumps(released)
    assert "base=10.0" not in text and BEGIN_HIDDEN not in text
    assert all(not c.get("outputs") for c in released.cells)


@pytest.fixture(scope="module")
def graded_edit(edited_course):
    """Two new submissions of the edited assignment and the early one, graded in sandboxes,
    then exported."""
    course = edited_course["course"]
    _submit(course, "honest")
    _submit(course, "mistaken", {"entropy": BITS_ONLY, "self_information": NO_MINUS})
    run = _autograde(course)
    results = {
        student: json.loads(
            (course / "work" / "autograded" / student / ASSIGNMENT / "results.json").read_text()
        )
        for student in ("early", "honest", "mistaken")
        if (course / "work" / "autograded" / student / ASSIGNMENT / "results.json").exists()
    }
    export = _run(course, "export", "--output", str(course / "grades.csv"))
    grades = (course / "grades.csv").read_text() if export.returncode == 0 else export.stderr
    return run, results, grades


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_the_edited_assignment_is_graded_with_the_new_and_changed_tests(graded_edit):
    run, results, _ = graded_edit
    assert run.returncode == 0, run.stderr[-3000:]
    honest = results["honest"]
    assert honest["max_score"] == 24 + 1 + 2 + 1  # the new tests, and entropy's hidden 2 -> 3
    assert honest["score"] == honest["max_score"] and honest["flags"] == [], honest["flags"]
    (cells,) = [nb["cells"] for nb in results["mistaken"]["notebooks"].values()]
    lost = {c["grade_id"]: c for c in cells if c["points"] < c["max_points"]}
    assert set(lost) == {
        "test_entropy_hidden",  # only the changed hidden test tries base 10
        "test_self_information_random",
        "test_self_information_hidden",
    }
    assert lost["test_entropy_hidden"]["max_points"] == 3 and lost["test_entropy_hidden"]["hidden"]
    assert (
        "self_information does not match the reference"
        in (lost["test_self_information_random"]["message"])
    )
    assert results["mistaken"]["score"] == 28 - 3 - 1 - 2
    assert results["mistaken"]["flags"] == []  # the notebook run and the verification agree


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_an_exercise_added_after_a_batch_was_graded_is_graded_and_exported(
    edited_course, graded_edit
):
    first = edited_course["first"]
    assert first.returncode == 0, first.stderr[-3000:]
    assert "early" in first.stdout and " 24 " in first.stdout
    run, results, grades = graded_edit
    assert run.returncode == 0, run.stderr[-3000:]
    # The early submission has the old notebook: the new exercise is missing from it, its
    # other answers are right (in base 10 too).
    early = results["early"]
    lost = {
        c["grade_id"] for nb in early["notebooks"].values() for c in nb["cells"] if not c["points"]
    }
    assert lost == {"test_self_information_random", "test_self_information_hidden"}
    assert early["score"] == 25 and early["max_score"] == 28
    # The gradebook holds every new cell's grade for every submission: scores and maxima
    # agree with the results, the early submission's included.
    rows = {line.split(",")[0]: line.split(",")[2:4] for line in grades.splitlines()[1:]}
    assert rows == {"early": ["25", "28"], "honest": ["28", "28"], "mistaken": ["22", "28"]}


def test_release_refuses_a_notebook_that_breaks_the_conventions_and_says_the_rule(tmp_path):
    """The Create Assignment toolbar names a new cell "cell-<hex>": release says what the ID
    must be and publishes nothing."""
    course = _copy_course(tmp_path)
    path = course / "solutions" / ASSIGNMENT / NOTEBOOK
    nb = nbformat.read(str(path), as_version=4)
    solution = next(c for c in nb.cells if _nbgrader(c).get("grade_id") == "kl_divergence")
    solution.metadata["nbgrader"]["grade_id"] = "cell-0b9d3e41"
    nbformat.write(nb, str(path))
    released = (course / "exercises" / ASSIGNMENT / NOTEBOOK).read_bytes()
    run = _run(course, "release")
    assert run.returncode == 1
    assert (
        "solution cell cell-0b9d3e41: its ID (grade_id) must be the name of the function it "
        "defines (defined here: kl_divergence)" in run.stderr
    )
    assert "nothing released" in run.stderr
    assert (course / "exercises" / ASSIGNMENT / NOTEBOOK).read_bytes() == released


#: The instructor's entropy, broken: 0 log 0 gives NaN.
BROKEN_SOLUTION = '''def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """The instructor's, broken."""
    ### BEGIN SOLUTION
    return reduce_loss(-(p * torch.log(p)).sum(dim) / math.log(base), reduction)
    ### END SOLUTION'''


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_autograde_refuses_when_the_instructor_solution_fails_in_the_sandbox(tmp_path):
    course = _copy_course(tmp_path)
    _submit(course, "alice")
    path = course / "solutions" / ASSIGNMENT / NOTEBOOK
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if _nbgrader(c).get("grade_id") == "entropy")
    cell.source = BROKEN_SOLUTION
    nbformat.write(nb, str(path))
    run = _run(course, "autograde", ASSIGNMENT, "--jobs", "1", "--no-progress", timeout=540)
    assert run.returncode == 1, run.stdout
    assert "the instructor's solution scores " in run.stderr, run.stderr[-3000:]
    assert "/24 when graded in the sandbox" in run.stderr
    assert "information.ipynb test_entropy_hidden: entropy does not match" in run.stderr
    assert not (course / "work" / "autograded").exists()  # no student was graded
    assert not (course / "work" / "gradebook.db").exists()
