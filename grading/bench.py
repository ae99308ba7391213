"""Benchmark the grader: seconds per honest ``a02_classification`` submission and the
speed-up of ``--jobs 2`` over ``--jobs 1`` on a batch of 8 (not a test; run by hand)::

    .venv/bin/python -m grading.bench [--batch 8]

It grades copies of an honest submission in a private grading folder, in the sandbox,
and prints the figures quoted in the README's "For instructors" section.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .course import ROOT
from .demo import submission


def _run(folder: Path, jobs: int, students: int) -> float:
    env = dict(os.environ, CVLOSS_GRADING_DIR=str(folder))
    start = time.perf_counter()
    command = [sys.executable, "-m", "grading", "autograde", "a02_classification"]
    subprocess.run(
        [*command, "--jobs", str(jobs), "--no-progress"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    name, text = submission("a02_classification")
    timings = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for i in range(args.batch):
                target = folder / "submitted" / f"student{i:02d}" / "a02_classification"
                target.mkdir(parents=True)
                (target / name).write_text(text)
            timings[jobs] = _run(folder, jobs, args.batch)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}")
    print(
        f"--jobs 1: {timings[1]:.1f} s for {args.batch} submissions "
        f"({timings[1] / args.batch:.1f} s per honest submission)"
    )
    print(f"--jobs 2: {timings[2]:.1f} s, speed-up {timings[1] / timings[2]:.2f}x")


if __name__ == "__main__":
    main()
