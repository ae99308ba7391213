"""``python -m grading.bench``, the grader's benchmark that the README quotes: a smoke run.

The smallest batch (one honest ``a02_classification`` submission, graded with ``--jobs 1``
and again with ``--jobs 2``), in the sandbox.  Its printed lines and its ``--save`` file
have the fields that ``benchmarks/report.py`` renders, the submission it timed was graded
(full marks, read from a gradebook the test points it at), and it leaves neither files
nor processes behind.  No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from grading.sandbox import bwrap_works
from tests import _grading_batch as batches
from tests._env import IN_CI, NO_BWRAP

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP),
]

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(\d+\.\d)"


def _report_module():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["report"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_runs_on_the_smallest_batch_and_saves_what_the_readme_quotes(tmp_path):
    from grading.gradebook import scores

    batch = batches.new_batch(tmp_path / "bench")
    saved_path = tmp_path / "grading.json"
    gradebook = f"sqlite:///{tmp_path / 'gradebook.db'}"
    batch.env["CVLOSS_GRADEBOOK_URL"] = gradebook  # the bench's own folders are deleted
    command = [sys.executable, "-m", "grading.bench", "--batch", "1", "--save", str(saved_path)]
    run = batch.run(command, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]

    saved = json.loads(saved_path.read_text())
    assert set(saved) == {"machine", "assignment", "batch", "seconds"}
    assert saved["assignment"] == "a02_classification" and saved["batch"] == 1
    assert set(saved["seconds"]) == {"1", "2"}
    one, two = saved["seconds"]["1"], saved["seconds"]["2"]
    assert one > 0 and two > 0
    assert re.fullmatch(
        r"a \d+-core .+ machine \(Python [\d.]+, torch \S+, (a|no) GPU\)", saved["machine"]
    )

    lines = run.stdout.splitlines()
    assert len(lines) == 3, run.stdout
    assert lines[0] == f"machine: {saved['machine']}"
    first = re.fullmatch(
        rf"--jobs 1: {NUMBER} s for 1 submissions \({NUMBER} s per honest submission\)", lines[1]
    )
    assert first and first[1] == first[2] == f"{one:.1f}", lines[1]
    second = re.fullmatch(rf"--jobs 2: {NUMBER} s, speed-up (\d+\.\d\d)x", lines[2])
    assert second and second[1] == f"{two:.1f}" and second[2] == f"{one / two:.2f}", lines[2]

    block = _report_module().grading_block(saved)  # the README's generated paragraph
    assert f"**{one:.1f} s per honest `a02_classification` submission**" in block

    # What it timed was a graded submission: full marks, in both runs (the second
    # overwrites the first's scores, so each run is checked by its own return code and
    # the table it printed is not shown: the gradebook holds the last one).
    (row,) = scores(gradebook)
    assert row == {
        "student": "student00",
        "assignment": "a02_classification",
        "score": 28.0,
        "max_score": 28.0,
    }
    assert batches.files_under(batch.tmp) == set()  # its grading folders are gone
    assert batches.survivors(batch) == []
