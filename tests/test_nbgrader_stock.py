"""Stock nbgrader 0.9 on the course, as an instructor runs it (README, "For instructors").

A copy of the course (``nbgrader_config.py``, ``grading/``, ``solutions/``, ``exercises/``)
is the course root; nbgrader's own commands run in it as subprocesses, from the root with no
option (nbgrader reads ``nbgrader_config.py`` there), with ``CVLOSS_GRADING_DIR`` pointing
outside it (the layout of ``grading/course.py`` moves nbgrader too):

- before ``python -m grading autograde``: ``validate`` on the solutions and the release,
  ``generate_assignment --force``, ``autograde`` of one demo submission, ``db student list``
  and ``export``;
- after it (the demo batch of tests/test_grade_demo.py, shared: ``make grade-demo`` graded
  alice, bob, carol and dave in the sandbox): ``db student list``, ``generate_assignment
  --force`` (which must not refuse nor delete the release), ``export``, the formgrader over
  HTTP, and ``autograde --force`` on a copy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbgrader.api import Gradebook

from grading import autograde
from grading.formgrader import outputs_of
from grading.notebooks import source_notebooks
from grading.results import NotebookResult, SubmissionResult
from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
from tests._env import IN_CI, NO_BWRAP
from tests.test_grade_demo import _grade_demo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
A02 = "a02_classification"
NOTEBOOK = "classification"
RELEASED = Path("exercises") / A02 / f"{NOTEBOOK}.ipynb"
OUR_SCORES = {"alice": 28.0, "bob": 24.0, "carol": 24.0, "dave": 0.0}


def _skip_without_the_demo_batch() -> None:
    """The stock commands run on make grade-demo's batch, graded in the sandbox."""
    if not (bwrap_works() or IN_CI):
        pytest.skip(NO_BWRAP)
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("shares make grade-demo's batch, which needs the project's .venv (make test)")


# ----------------------------------------------------------------------------- helpers


def _copy_course(target: Path) -> Path:
    """The course as an instructor's checkout has it, without anyone's grading outputs."""
    target.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", target)
    outputs = shutil.ignore_patterns(
        "__pycache__", "submitted", "autograded", "feedback", "gradebook.db*", "*.csv"
    )
    for folder in ("grading", "solutions", "exercises"):
        shutil.copytree(ROOT / folder, target / folder, ignore=outputs)
    # release writes the links and the install cell from the book's settings.
    shutil.copy(ROOT / "_config.yml", target / "_config.yml")
    shutil.copytree(ROOT / "book", target / "book", ignore=shutil.ignore_patterns("_static"))
    return target


def _env(work: Path | None) -> dict[str, str]:
    """The environment of an instructor whose .venv is active, grading into ``work``
    (the default layout, grading/ of the course, when None)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("CVLOSS_GRADEBOOK_URL", None)
    env.pop("CVLOSS_GRADING_DIR", None)
    if work is not None:
        env["CVLOSS_GRADING_DIR"] = str(work)
    return env


def _nbgrader(course: Path, work: Path | None, *args: str, timeout: float = 300) -> list:
    """``nbgrader ARGS`` run from the course root; [args, returncode, stdout, stderr]."""
    run = subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=_env(work),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return [run.args, run.returncode, run.stdout, run.stderr]


def _scores(csv_text: str) -> dict[str, float]:
    return {row["student_id"]: float(row["score"]) for row in csv.DictReader(io.StringIO(csv_text))}


def _export(course: Path, work: Path) -> tuple[list, dict[str, float]]:
    run = _nbgrader(course, work, "export", "--to", str(work / "export.csv"))
    path = work / "export.csv"
    return run, _scores(path.read_text()) if path.exists() else {}


def _cells(db: Path) -> dict:
    """What the gradebook knows of the notebook's cells (every column but the row ids)."""
    with Gradebook(f"sqlite:///{db}") as gb:
        notebook = gb.find_notebook(NOTEBOOK, A02)
        cells = {"kernelspec": notebook.kernelspec}
        for kind in ("grade_cells", "solution_cells", "task_cells", "source_cells"):
            for cell in getattr(notebook, kind):
                row = cell.to_dict()
                row.pop("id", None)
                cells[f"{kind}/{cell.name}"] = row
        return cells


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def _formgrader(course: Path, work: Path) -> dict:
    """Start ``jupyter server`` (nbgrader's formgrader extension) in the course root and
    fetch, per student, the submitted notebooks' scores and the submission's page."""
    port, token = _free_port(), secrets.token_hex(16)
    command = [str(BIN / "jupyter"), "server", "--no-browser", "--allow-root"]
    command += [f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={course}"]
    log = work / "jupyter-server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=course, env=_env(work), stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, _ = _get(f"{base}/api/status?token={token}")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                return {"error": f"the server did not start:\n{log.read_text()[-3000:]}"}
            time.sleep(0.5)
        status, text = _get(
            f"{base}/formgrader/api/submitted_notebooks/{A02}/{NOTEBOOK}?token={token}"
        )
        if status != 200:
            return {"error": f"submitted_notebooks: HTTP {status}\n{text[-2000:]}"}
        pages = {}
        for notebook in json.loads(text):
            page = f"{base}/formgrader/submissions/{notebook['id']}/?token={token}"
            pages[notebook["student"]] = {"score": notebook["score"], "page": _get(page)}
        return {"pages": pages}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ----------------------------------------------------------------------------- the runs


def _released(course: Path) -> str | None:
    return (course / RELEASED).read_text() if (course / RELEASED).exists() else None


def _before(course: Path, before: Path, demo_folder: Path) -> dict:
    """The stock commands before python -m grading autograde, in a fresh grading folder."""
    started = time.monotonic()
    out: dict = {"before": str(before)}
    source = Path("solutions") / A02 / f"{NOTEBOOK}.ipynb"
    out["validate"] = _nbgrader(course, before, "validate", str(source), str(RELEASED))
    out["generate_before"] = _nbgrader(course, before, "generate_assignment", A02, "--force")
    out["released_before"] = _released(course)
    alice = demo_folder / "submitted" / "alice" / A02
    shutil.copytree(alice, before / "submitted" / "alice" / A02)
    out["autograde_before"] = _nbgrader(course, before, "autograde", A02)
    out["students_before"] = _nbgrader(course, before, "db", "student", "list")
    out["export_before"], out["scores_before"] = _export(course, before)
    out["seconds_before"] = time.monotonic() - started
    return out


def _after(course: Path, after: Path, demo_folder: Path) -> dict:
    """The stock commands after it, on a copy of make grade-demo's grading folder
    (submissions, results, gradebook), then in the default layout."""
    started = time.monotonic()
    out: dict = {"after": str(after)}
    shutil.copytree(demo_folder, after, ignore=shutil.ignore_patterns("feedback", "*.csv"))
    out["students_after"] = _nbgrader(course, after, "db", "student", "list")
    out["generate_after"] = _nbgrader(course, after, "generate_assignment", A02, "--force")
    out["released_after"] = _released(course)
    out["export_after"], out["scores_after"] = _export(course, after)
    out["formgrader"] = _formgrader(course, after)
    stock = after.with_name("stock")  # then stock autograde replaces our results, on a copy
    shutil.copytree(after, stock)
    out["autograde_after"] = _nbgrader(course, stock, "autograde", A02, "--force")
    out["export_stock"], out["scores_stock"] = _export(course, stock)
    # No CVLOSS_GRADING_DIR: the gradebook goes to the course's grading/.
    out["students_default"] = _nbgrader(course, None, "db", "student", "list")
    out["root_files"] = sorted(p.name for p in course.iterdir())
    out["grading_files"] = sorted(p.name for p in (course / "grading").iterdir())
    out["seconds_after"] = time.monotonic() - started
    return out


def _stock_runs(root: Path, demo_folder: Path) -> dict:
    """Every stock command, before and after our autograde (a JSON-serialisable dict): the
    two series at once, each in its own copy of the course (generate_assignment writes
    its exercises/)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        before = pool.submit(
            _before, _copy_course(root / "course-before"), root / "before", demo_folder
        )
        out = _after(_copy_course(root / "course"), root / "after", demo_folder)
        out.update(before.result())
    return out


@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    _skip_without_the_demo_batch()
    demo = batches.once(tmp_path_factory, "demo", _grade_demo)
    assert demo["run"][1] == 0, (
        f"make grade-demo failed:\n{demo['run'][2][-3000:]}{demo['run'][3][-3000:]}"
    )
    state = batches.once(
        tmp_path_factory, "nbgrader-stock", lambda root: _stock_runs(root, Path(demo["folder"]))
    )
    return SimpleNamespace(**state, demo=demo)


def _ok(run: list) -> str:
    """The command's output, for assertion messages; asserts that it succeeded."""
    args, code, stdout, stderr = run
    text = f"{' '.join(map(str, args))} exited {code}:\n{stdout[-3000:]}\n{stderr[-6000:]}"
    assert code == 0, text
    return stdout + stderr


# ----------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_nbgrader_reads_the_course_layout_from_the_root(stock):
    """No option: nbgrader finds nbgrader_config.py at the root, the gradebook where
    CVLOSS_GRADING_DIR says (or grading/ by default), never a stray ./gradebook.db."""
    output = _ok(stock.students_after)
    assert "There are 4 students in the database" in output, output
    for student in OUR_SCORES:
        assert f"\n{student} (" in output, output
    assert "No nbgrader_config.py file found" not in output
    assert "There are 0 students" in _ok(stock.students_default)
    assert "gradebook.db" not in stock.root_files
    assert "gradebook.db" in stock.grading_files


@pytest.mark.slow
def test_validate_accepts_the_solutions_and_finds_the_release_unanswered(stock):
    output = _ok(stock.validate)
    assert "Success! Your notebook passes all the tests." in output, output
    assert "VALIDATION FAILED ON" in output, output
    assert "your function is not written yet" in output


@pytest.mark.slow
def test_generate_assignment_works_before_and_after_our_autograde(stock):
    """The release it writes is the committed one, byte for byte; after our autograde it
    neither refuses ("Cannot add or remove cells") nor deletes the release."""
    committed = (ROOT / RELEASED).read_text()
    _ok(stock.generate_before)
    assert stock.released_before == committed
    output = _ok(stock.generate_after)
    assert "Cannot add or remove cells" not in output
    assert stock.released_after == committed


@pytest.mark.slow
def test_our_gradebook_holds_the_cells_generate_assignment_stores(stock):
    """Source cells with nbgrader's checksums, grade, solution and task cells, kernelspec:
    what `python -m grading autograde` registered equals what nbgrader stored."""
    ours = _cells(Path(stock.after) / "gradebook.db")
    nbgraders = _cells(Path(stock.before) / "gradebook.db")
    assert any(key.startswith("source_cells/") for key in nbgraders)
    assert ours == nbgraders


@pytest.mark.slow
def test_stock_autograde_before_ours(stock):
    _ok(stock.autograde_before)
    assert "There are 1 students" in _ok(stock.students_before)
    _ok(stock.export_before)
    assert stock.scores_before == {"alice": 28.0}


@pytest.mark.slow
def test_export_after_ours_gives_our_scores(stock):
    _ok(stock.export_after)
    assert stock.scores_after == OUR_SCORES


@pytest.mark.slow
def test_stock_autograde_after_ours_agrees_but_on_tampering(stock):
    """nbgrader's own autograde of the same submissions: the honest and the mistaken one
    score as with our grader; carol, who replaces the test harness in her solution cell,
    passes every test there (nbgrader trusts the kernel), and dave's image is not graded."""
    output = stock.autograde_after[2] + stock.autograde_after[3]
    assert "Cannot add or remove cells" not in output
    assert "does not exist in the database" not in output
    for student in ("alice", "bob", "carol"):
        assert f"There was an error processing assignment '{A02}' for student '{student}'" not in (
            output
        ), output[-6000:]
    _ok(stock.export_stock)
    assert {s: stock.scores_stock[s] for s in ("alice", "bob")} == {"alice": 28.0, "bob": 24.0}
    assert stock.scores_stock["carol"] == 28.0 > OUR_SCORES["carol"]


@pytest.mark.slow
def test_formgrader_shows_the_graded_notebook_scores_and_flags(stock):
    """Per submission, the formgrader's page is the notebook our grader graded (its summary
    on top, hidden tests, the verdict under each test cell) with the gradebook's scores;
    dave's unreadable file gives a page that says why, not HTTP 500."""
    assert "error" not in stock.formgrader, stock.formgrader.get("error")
    pages = stock.formgrader["pages"]
    assert {s: pages[s]["score"] for s in pages} == OUR_SCORES
    for student, fetched in pages.items():
        status, html = fetched["page"]
        assert status == 200, f"{student}: HTTP {status}\n{html[-2000:]}"
        assert "Graded by <code>python -m grading autograde</code>" in html, student
        assert "### BEGIN HIDDEN TESTS" in html, student  # the hidden tests are shown
        assert "Grader:" in html, student
    bob = pages["bob"]["page"][1]
    assert "saturated logits" in bob  # why his cross_entropy failed
    assert "imports cvloss_ref" in pages["carol"]["page"][1]  # a flag
    assert "not a valid notebook" in pages["dave"]["page"][1]


@pytest.mark.slow
def test_formgrader_shows_the_outputs_of_the_sandboxed_run(stock):
    bob = stock.formgrader["pages"]["bob"]["page"][1]
    # The tracebacks of his three failing cross_entropy test cells, as the sandbox ran them.
    assert bob.count('class="output_subarea output_text output_error"') >= 3


# ----------------------------------------------------------------------------- no sandbox


def _a02_result(reason: str = "") -> SubmissionResult:
    (source,) = source_notebooks(A02)
    result = SubmissionResult("eve", A02, max_score=source.max_score, reason=reason)
    result.add(NOTEBOOK, NotebookResult(max_score=source.max_score, reason=reason))
    return result


def test_a_notebook_nbformat_cannot_write_gives_a_page_that_says_why(tmp_path, monkeypatch):
    """A lone surrogate (valid JSON, not UTF-8) in a solution cell: what autograde writes
    for the formgrader is a valid notebook that says so, and the batch goes on."""
    monkeypatch.setattr(autograde, "AUTOGRADED_DIR", tmp_path / "autograded")
    submission = json.loads((ROOT / RELEASED).read_text())
    for cell in submission["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "cross_entropy":
            cell["source"] = "def cross_entropy(*args):\n    return '\ud800'\n"
    folder = tmp_path / "submitted"
    folder.mkdir()
    (folder / f"{NOTEBOOK}.ipynb").write_text(json.dumps(submission))  # escapes the surrogate
    autograde._save(_a02_result(), folder)
    written = tmp_path / "autograded" / "eve" / A02 / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(str(written), as_version=4)
    nbformat.validate(nb)
    assert "the graded notebook cannot be written (UnicodeEncodeError)" in nb.cells[0].source
    assert nb.metadata["cvloss_grading"]["student"] == "eve"
    # No temporary file is left behind.
    assert sorted(p.name for p in written.parent.iterdir()) == [written.name, "results.json"]


def test_only_safe_outputs_of_the_sandboxed_run_are_shown():
    """The executed notebook comes from the sandbox: its HTML, JavaScript and SVG outputs
    would run in the instructor's browser, so only text and raster images are kept, and
    nothing when its cells do not line up with the notebook that was run."""
    (source,) = source_notebooks(A02)
    graded = autograde.graded_notebook(source, {})
    executed = json.loads(nbformat.writes(graded))
    index = next(i for i, c in enumerate(graded.cells) if c.cell_type == "code")
    executed["cells"][index]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "printed\n"},
        {
            "output_type": "display_data",
            "metadata": {},
            "data": {
                "text/html": "<script>alert(1)</script>",
                "application/javascript": "alert(1)",
                "image/svg+xml": "<svg onload='alert(1)'/>",
                "image/png": "iVBORw0KGgo=",
                "text/plain": "<Figure>",
            },
        },
        {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<b>x</b>"}},
        {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]},
        {"output_type": "stream", "name": "stdout", "text": 42},
    ]
    kept = outputs_of(executed, graded)
    assert kept == {
        str(index): [
            {"output_type": "stream", "name": "stdout", "text": "printed\n"},
            {
                "output_type": "display_data",
                "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
                "metadata": {},
            },
            {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]},
        ]
    }
    executed["cells"].pop()
    assert outputs_of(executed, graded) == {}
