"""``python -m grading.bench``, the grader's benchmark that the README quotes: a smoke run.

The smallest batch (one honest ``a02_classification`` submission), graded by one and by
two local worker processes and by a Dask cluster of one and of two workers on 127.0.0.1,
in the sandbox.  Its printed lines and its ``--save`` file
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
    command = [sys.executable, "-m", "grading.bench", "--batch", "1", "--workers", "1", "2"]
    run = batch.run([*command, "--save", str(saved_path)], timeout=1500)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]

    saved = json.loads(saved_path.read_text())
    assert set(saved) == {"machine", "assignment", "batch", "seconds", "submission_seconds"}
    assert saved["assignment"] == "a02_classification" and saved["batch"] == 1
    assert set(saved["seconds"]) == set(saved["submission_seconds"]) == {"local", "dask"}
    for engine, times in saved["seconds"].items():
        assert set(times) == {"1", "2"} and all(seconds > 0 for seconds in times.values())
        for workers, each in saved["submission_seconds"][engine].items():
            # One submission's own time in its worker: part of the command's.
            assert 0 < each < times[workers]
    assert re.fullmatch(
        r"a \d+-core .+ machine \(Python [\d.]+, torch \S+, (a|no) GPU\)", saved["machine"]
    )

    lines = run.stdout.splitlines()
    assert lines[0] == f"machine: {saved['machine']}"
    assert len(lines) == 5, run.stdout
    for text, (engine, workers) in zip(
        lines[1:], [("local", 1), ("dask", 1), ("local", 2), ("dask", 2)]
    ):
        took = saved["seconds"][engine][str(workers)]
        each = saved["submission_seconds"][engine][str(workers)]
        found = re.fullmatch(
            rf"{engine} x{workers}: {NUMBER} s for 1 submissions \({NUMBER} s each, "
            rf"{NUMBER} s in the worker; 1,000 in {NUMBER} h\)(, (\d+\.\d\d)x over one worker)?",
            text,
        )
        assert found and found[1] == found[2] == f"{took:.1f}", text
        assert found[3] == f"{each:.1f}", text
        assert found[4] == f"{took * 1000 / 3600:.1f}", text
        one = saved["seconds"][engine]["1"]
        assert (found[6] is None) == (workers == 1), text
        assert workers == 1 or found[6] == f"{one / took:.2f}", text

    block = _report_module().grading_block(saved)  # the README's generated table
    local_one = saved["seconds"]["local"]["1"]
    local_each = saved["submission_seconds"]["local"]["1"]
    assert (
        f"| local processes (`--jobs N`) | 1 | {local_one:.1f} | {local_one:.1f} "
        f"| {local_each:.1f} | 1.00x |" in block
    )
    assert block.count("\n| Dask workers (`--scheduler`) |") == 2

    # What it timed was a graded submission: full marks (each run overwrites the last
    # one's scores, and a failed run stops the bench, so every run graded it).
    (row,) = scores(gradebook)
    assert row == {
        "student": "student00",
        "assignment": "a02_classification",
        "score": 28.0,
        "max_score": 28.0,
    }
    assert batches.files_under(batch.tmp) == set()  # its grading folders are gone
    assert batches.survivors(batch) == []
