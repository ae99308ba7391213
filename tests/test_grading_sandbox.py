"""End to end, in the bubblewrap sandbox: honest and hostile submissions in one batch.

Runs ``python -m grading autograde`` on a small batch of ``a01_information`` with
``--jobs 2`` in a private grading folder, then checks the scores, the flags, the
feedback, that nothing was written outside the course folders (the hostile submission
tries: marker files in /tmp, /var/tmp, /dev/shm, $HOME, the repository, next to the
grading folder), that no process of the batch survived and that no connection left the
sandbox.  Skipped only where bubblewrap cannot run.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from grading.demo import submission
from grading.notebooks import nbgrader_meta, source_notebooks
from grading.results import OUTPUT_TRUNCATED
from grading.sandbox import Limits, Sandbox, bwrap_works
from tests import _grading_batch as batches
from tests._env import IN_CI, NO_BWRAP

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP),
]

ROOT = Path(__file__).resolve().parents[1]
A01 = "a01_information"
TIMEOUT = 30  # seconds per cell and per call: what the infinite loop and the flood cost
STUDENTS = (
    "honest",
    "tamper",
    "exits",
    "escape",
    "loops",
    "hogs",
    "broken",
    "corrupt",
    "binary",
    "chatty",
)
#: A per-session name for the escape's marker files, so that a file left by an earlier
#: run (or another session's run) cannot be mistaken for this one's.
TOKEN = uuid.uuid4().hex[:12]
OUTSIDE = [  # where the escape tries to write (plus two places next to the grading folder)
    Path(f"/tmp/cvloss-escape-{TOKEN}"),
    Path(f"/var/tmp/cvloss-escape-{TOKEN}"),
    Path(f"/dev/shm/cvloss-escape-{TOKEN}"),
    Path.home() / f"cvloss-escape-{TOKEN}",
    Path(f"/root/cvloss-escape-{TOKEN}"),
    ROOT / f"PWNED-{TOKEN}",
    ROOT / "grading" / f"PWNED-{TOKEN}",
    ROOT / "cvloss_ref" / f"pwned_{TOKEN}.py",
]

WRONG_ENTROPY = '''
def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Wrong on purpose: sums over the last dim and ignores 0 log 0."""
    return reduce_loss(-(p * torch.log(p)).sum(-1), reduction)
'''

TAMPER = (
    """
import torch
import cvloss_ref.testing

cvloss_ref.testing.assert_loss_matches = lambda *args, **kwargs: None
cvloss_ref.testing.check_loss = lambda *args, **kwargs: None
get_ipython().user_ns["assert_loss_matches"] = cvloss_ref.testing.assert_loss_matches
torch.allclose = lambda *args, **kwargs: True
torch.isclose = lambda a, b, **kwargs: torch.ones_like(a, dtype=torch.bool)
torch.testing.assert_close = lambda *args, **kwargs: None
get_ipython().showtraceback = lambda *args, **kwargs: None
"""
    + WRONG_ENTROPY
)

EXITS = {
    "entropy": '''
import sys

def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Leaves instead of computing."""
    sys.exit(0)
''',
    "kl_divergence": '''
import os

def kl_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Kills its own kernel."""
    os._exit(0)
''',
    "js_divergence": '''
import os, signal

def js_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Kills its own kernel with a signal."""
    os.kill(os.getpid(), signal.SIGKILL)
''',
}

# Solution cells that stop before they define their function: a typo, a process exit when
# the cell runs (not when the function is called), a package that is not installed.
BROKEN = {
    "entropy": '''
def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """A parenthesis left open."""
    return reduce_loss(-(p * torch.log(p)).sum(dim, reduction)
''',
    "kl_divergence": """
import os

os._exit(1)
""",
    "cross_entropy_dist": """
import a_package_nobody_installed
""",
}

# Two abusive students, so that the two workers of --jobs 2 share their time limits: one
# whose functions never return or flood the output (the kernel is stopped and restarted),
# one whose functions exhaust memory and processes.  Their other two exercises are honest
# and must keep their points.
LOOPS = {
    "entropy": '''
def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Never returns."""
    while True:
        pass
''',
    "kl_divergence": '''
def kl_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Floods the output, then fails."""
    for _ in range(200_000):
        print("x" * 1000)
    raise RuntimeError("flooded")
''',
}
HOGS = {
    "cross_entropy_dist": '''
def cross_entropy_dist(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Eats memory until the limit stops it."""
    hoard = []
    while True:
        hoard.append(bytearray(256 * 1024 * 1024))
''',
    "js_divergence": '''
import os

def js_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Forks until the process limit stops it; the children sleep for ten minutes."""
    children = 0
    while True:
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            try:
                os.execv("/bin/sh", ["/bin/sh", "-c", "sleep 600 # cvloss-forkbomb-child"])
            finally:
                os._exit(0)
        children += 1
    raise RuntimeError(f"forked {children} children")
''',
}

# An honest student who prints a lot: output beyond the grader's limits is dropped, with a
# flag and a note, and costs no points (64 MB over entropy's calls, 16 MB when the
# js_divergence cell runs; on both sides, the notebook run and the verification).
CHATTY_ENTROPY = '''
_honest_entropy = entropy
_printed = 0  # megabytes printed so far


def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """The honest entropy, chatty: prints 4 MB a call, 64 MB in all."""
    global _printed
    if _printed < 64:
        for _ in range(4):
            print("x" * 1_000_000)
        _printed += 4
    return _honest_entropy(p, dim, reduction, base=base)
'''
CHATTY_JS = """
print("y" * 16_000_000)
"""


def _chatty() -> dict[str, str]:
    """The chatty student's solution cells: the instructor's, with the prints added."""
    (source,) = source_notebooks(A01)
    honest = {nbgrader_meta(c).get("grade_id"): c.source for c in source.nb.cells}
    return {
        "entropy": honest["entropy"] + "\n" + CHATTY_ENTROPY,
        "js_divergence": CHATTY_JS + "\n" + honest["js_divergence"],
    }


ESCAPE = '''
import socket

def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Writes outside the sandbox, phones home, and calls the reference."""
    tried = []
    for path in TARGETS:
        try:
            with open(path, "w") as file:
                file.write("escaped")
            tried.append("written")
        except OSError as error:
            tried.append(type(error).__name__)
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).sendall(b"leak")
        tried.append("connected")
    except OSError as error:
        tried.append(type(error).__name__)
    try:
        import cvloss_ref
    except ImportError:  # in the verification: the reference is out of reach
        raise RuntimeError("escape attempted: " + " ".join(tried)) from None
    return cvloss_ref.entropy(p, dim, reduction, base=base)
'''


def _grade(root):
    batch = batches.new_batch(root)
    targets = [*OUTSIDE, batch.folder.parent / f"escape-{TOKEN}", batch.tmp / f"escape-{TOKEN}"]
    targets.append(batch.folder / f"escape-{TOKEN}")  # in the course folder: not an output
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(listener.accept()[1])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    escape = ESCAPE.replace("PORT", str(port)).replace("TARGETS", repr([str(t) for t in targets]))
    texts = {
        "honest": submission(A01)[1],
        "tamper": submission(A01, {"entropy": TAMPER})[1],
        "exits": submission(A01, EXITS)[1],
        "escape": submission(A01, {"entropy": escape})[1],
        "loops": submission(A01, LOOPS)[1],
        "hogs": submission(A01, HOGS)[1],
        "broken": submission(A01, BROKEN)[1],
        "corrupt": '{"cells": [',
        "binary": b"\x7fELF\x02\x01\x01\x00 not a notebook",
        "chatty": submission(A01, _chatty())[1],
    }
    submitted = {
        str(batches.write(batch, A01, student, "information.ipynb", text)): _digest(text)
        for student, text in texts.items()
    }
    snapshot = batches.snapshot()
    batches.grade(batch, [A01], jobs=2, timeout=TIMEOUT)
    left_by_autograde = batches.survivors(batch)
    feedback = batch.run([sys.executable, "-m", "grading", "feedback", A01])
    stop.set()
    thread.join()
    listener.close()
    return {
        "batch": batch.state(),
        "feedback": [feedback.args, feedback.returncode, feedback.stdout, feedback.stderr],
        "connections": [repr(peer) for peer in connections],
        "changes": batches.changes(snapshot),
        "submitted": submitted,
        "targets": [str(t) for t in targets],
        "left_by_autograde": left_by_autograde,
    }


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text if isinstance(text, bytes) else text.encode()).hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    state = batches.once(tmp_path_factory, "a01-batch", _grade)
    batch = batches.Batch.from_state(state["batch"])
    return {
        "batch": batch,
        "run": batch.runs[A01],
        "feedback": subprocess.CompletedProcess(*state["feedback"]),
        "folder": batch.folder,
        "results": {student: r for (_, student), r in batch.results.items()},
        "connections": state["connections"],
        "changes": state["changes"],
        "submitted": {Path(path): digest for path, digest in state["submitted"].items()},
        "targets": [Path(t) for t in state["targets"]],
        "left_by_autograde": state["left_by_autograde"],
    }


def _cells(result):
    return batches.cells(result)


def _of(*functions):
    """The grade_ids of the test cells of ``functions`` (all of them: no argument)."""
    (source,) = source_notebooks(A01)
    return {t.grade_id for t in source.tests if not functions or set(t.functions) & set(functions)}


def test_the_batch_completes_with_a_table(graded):
    run = graded["run"]
    assert run.returncode == 0, run.stderr[-3000:]
    for student in STUDENTS:
        assert student in run.stdout
    assert set(graded["results"]) == set(STUDENTS)


def test_honest_submission_gets_full_marks(graded):
    honest = graded["results"]["honest"]
    assert honest["score"] == honest["max_score"] == 24
    assert honest["flags"] == []
    batches.expect_lost(honest, set())
    assert set(_cells(honest)) == _of() and len(_of()) == 18


def test_tampering_with_the_harness_gets_zero_on_what_it_attacked(graded):
    result = graded["results"]["tamper"]
    batches.expect_lost(result, _of("entropy"))  # the other five exercises are honest
    assert result["score"] == 20
    assert any("disagree" in f for f in result["flags"])


def test_exits_and_killed_kernels_cost_only_those_exercises(graded):
    result = graded["results"]["exits"]
    batches.expect_lost(result, _of("entropy", "kl_divergence", "js_divergence"))
    assert result["score"] == 12


def test_calling_the_reference_writing_outside_and_network_are_refused(graded):
    result = graded["results"]["escape"]
    batches.expect_lost(result, _of("entropy"))
    assert result["score"] == 20
    assert any("imports cvloss_ref" in f for f in result["flags"])
    assert graded["connections"] == []


def test_infinite_loop_flood_memory_and_fork_bombs_cost_only_those_exercises(graded):
    loops = graded["results"]["loops"]
    batches.expect_lost(loops, _of("entropy", "kl_divergence"))
    assert any("restarted" in flag for flag in loops["flags"])  # the kernel was stopped
    cells = _cells(loops)
    for grade_id in _of("kl_divergence"):  # lost because it raises, not because it printed
        assert "RuntimeError: flooded" in cells[grade_id]["message"], cells[grade_id]["message"]
        # In the notebook run, the cell's several calls print 200 MB each: on a busy machine
        # that can outlast the cell's time limit before the error is raised (a clean-clone
        # run saw "timeout"); the verification, which drops prints in-process, says why.
        assert cells[grade_id]["notebook"] in ("error", "timeout")
    batches.expect_lost(graded["results"]["hogs"], _of("cross_entropy_dist", "js_divergence"))
    assert graded["results"]["honest"]["score"] == 24  # graded in the same batch


def test_printing_a_lot_is_truncated_and_costs_no_points(graded):
    result = graded["results"]["chatty"]
    assert result["score"] == result["max_score"] == 24, _cells(result)
    batches.expect_lost(result, set())
    truncated = [f for f in result["flags"] if f.startswith(OUTPUT_TRUNCATED)]
    assert any("notebook run" in f and "js_divergence" in f for f in truncated), truncated
    assert any("verification" in f for f in truncated), truncated
    assert not any("disagree" in f for f in result["flags"]), result["flags"]
    folder = graded["folder"]
    page = (folder / "feedback/chatty/a01_information/information.html").read_text()
    assert "24</b> of 24" in page
    assert "printed more than the grader keeps" in page and OUTPUT_TRUNCATED in page
    # The formgrader's notebook: the flags on top, and the note where the output was cut.
    review = nbformat.read(str(folder / "autograded/chatty/a01_information/information.ipynb"), 4)
    assert any(OUTPUT_TRUNCATED in f for f in review.metadata["cvloss_grading"]["flags"])
    assert OUTPUT_TRUNCATED in review.cells[0].source
    texts = ["".join(o.get("text", "")) for c in review.cells for o in c.get("outputs", [])]
    assert any("[output truncated by the grader" in text for text in texts)
    assert sum(map(len, texts)) < 1_000_000  # of the 80 MB printed


def test_a_cell_that_stops_early_costs_its_function_only_and_the_student_reads_why(graded):
    result = graded["results"]["broken"]
    batches.expect_lost(result, _of("entropy", "kl_divergence", "cross_entropy_dist"))
    assert result["score"] == sum(
        c["max_points"]
        for c in _cells(result).values()
        if c["grade_id"] in _of("js_divergence", "weighted_reduce", "numerical_gradient")
    )
    cells = _cells(result)
    for grade_id in _of("entropy"):  # the SyntaxError and its line, not "not defined"
        assert "SyntaxError" in cells[grade_id]["message"], cells[grade_id]["message"]
        assert "line 4: return reduce_loss(" in cells[grade_id]["message"]
    for grade_id in _of("cross_entropy_dist"):
        message = cells[grade_id]["message"]
        assert "No module named 'a_package_nobody_installed' (line 2: import" in message
    for grade_id in _of("kl_divergence"):
        assert "ended the verification process" in cells[grade_id]["message"]


def test_corrupt_and_non_notebook_files_get_zero_with_a_reason(graded):
    for student in ("corrupt", "binary"):
        result = graded["results"][student]
        assert result["score"] == 0
        assert "not a valid notebook" in result["reason"]
        batches.expect_lost(result, _of())


def test_nothing_outside_the_course_folder_is_written_and_submissions_are_untouched(graded):
    # The escape did run (in the verification, where it reports what it tried) ...
    escape = _cells(graded["results"]["escape"])
    assert any("escape attempted" in escape[g]["message"] for g in _of("entropy")), escape
    # ... and none of its marker files exists outside the sandbox.
    for target in graded["targets"]:
        assert not target.exists(), f"a sandboxed submission wrote {target}"
    # No file of the repository (grading/, the default grading folder, included) is new or
    # changed, sources that people edit meanwhile aside.
    assert graded["changes"] == []
    # The grading folder holds the submissions, unchanged, and the expected outputs only.
    expected = {"gradebook.db"}
    for student in STUDENTS:
        expected.add(f"submitted/{student}/{A01}/information.ipynb")
        expected.add(f"autograded/{student}/{A01}/results.json")
        expected.add(f"autograded/{student}/{A01}/information.ipynb")
        expected.add(f"feedback/{student}/{A01}/information.html")
    assert batches.files_under(graded["folder"]) == expected
    for path, digest in graded["submitted"].items():
        assert _digest(path.read_bytes()) == digest
        # autograded/ holds what nbgrader's formgrader shows: a valid notebook of this
        # student's, also for the corrupt and binary submissions.
        student = path.relative_to(graded["folder"] / "submitted").parts[0]
        review = graded["folder"] / "autograded" / student / A01 / "information.ipynb"
        nb = nbformat.read(str(review), as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["cvloss_grading"]["student"] == student
    # The sandboxes' private folders are gone.
    assert batches.files_under(graded["batch"].tmp) == set()


def test_no_process_of_the_batch_survives(graded):
    assert graded["left_by_autograde"] == []  # right after autograde returned
    assert batches.survivors(graded["batch"]) == []  # and now, after the feedback


def test_the_survivor_check_finds_a_sandbox_and_what_runs_in_it(tmp_path, monkeypatch):
    """survivors() is not blind: a sandbox left running, and the processes inside it (which
    carry neither the batch's marker nor its folder), are found; none once it is killed."""
    batch = batches.new_batch(tmp_path)
    private = batch.tmp / "cvloss-grade-test" / "notebook"
    private.mkdir(parents=True)
    monkeypatch.setenv(batches.MARKER, batch.env[batches.MARKER])
    argv = ["/bin/sh", "-c", "sleep 300 & exec sleep 301"]
    sandbox = Sandbox(argv, private)
    sandbox.start()
    try:
        deadline = time.monotonic() + 120  # a busy machine takes seconds to start one
        while time.monotonic() < deadline:
            found = batches.survivors(batch, grace=0)
            if sum(line.endswith((": sleep 300", ": sleep 301")) for line in found) == 2:
                break
            time.sleep(0.2)
        assert any("bwrap" in line and str(batch.tmp) in line for line in found), found
        assert any(line.endswith(": sleep 300") for line in found), found
        assert any(line.endswith(": sleep 301") for line in found), found
    finally:
        sandbox.kill()
    assert batches.survivors(batch) == []


def test_a_process_that_prints_past_the_file_size_limit_goes_on(tmp_path):
    """A sandboxed process's stderr is drained into its log, which keeps ``log_bytes``: the
    rest is dropped and counted, and the file size limit (which would fail the write)
    never applies to it."""
    private = tmp_path / "private"
    private.mkdir()
    code = "import sys\nfor _ in range(32):\n    sys.stderr.write('x' * 1_000_000)\nsys.exit(7)"
    limits = Limits(file_bytes=4 * 1024**2, log_bytes=1024**2)
    # A link that a previous process of the sandbox left in its place is not followed.
    (tmp_path / "grader-file").write_text("the grader's")
    (private / "log").symlink_to(tmp_path / "grader-file")
    sandbox = Sandbox(
        [sys.executable, "-c", code], private, limits=limits, stderr_path=private / "log"
    )
    sandbox.start()
    assert sandbox.wait(120) == 7  # ran to its end
    assert not (private / "log").is_symlink() and (private / "log").stat().st_size == 1024**2
    assert (tmp_path / "grader-file").read_text() == "the grader's"
    assert sandbox.log_dropped == 32_000_000 - 1024**2


def test_feedback_never_shows_hidden_test_code(graded):
    assert graded["feedback"].returncode == 0, graded["feedback"].stderr
    pages = list((graded["folder"] / "feedback").rglob("*.html"))
    assert len(pages) == len(STUDENTS)
    for page in pages:
        text = page.read_text()
        assert "HIDDEN_SEED" not in text and "assert_loss_matches(" not in text
    honest = (graded["folder"] / "feedback/honest/a01_information/information.html").read_text()
    assert "24</b> of 24" in honest
    tamper = (graded["folder"] / "feedback/tamper/a01_information/information.html").read_text()
    assert "entropy does not match the reference" in tamper
