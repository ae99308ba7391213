"""Benchmark the grader: seconds per honest ``a02_classification`` submission and the
speed-up of ``--jobs 2`` over ``--jobs 1`` on a batch of 8 (not a test; run by hand)::

    .venv/bin/python -m grading.bench [--batch 8] [--save benchmarks/results/grading.json]

It grades copies of an honest submission in a private grading folder, in the sandbox,
and prints the figures quoted in the README's "For instructors" section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .course import ROOT
from .demo import submission

ASSIGNMENT = "a02_classification"


def _run(folder: Path, jobs: int, students: int) -> float:
    env = dict(os.environ, CVLOSS_GRADING_DIR=str(folder))
    start = time.perf_counter()
    command = [sys.executable, "-m", "grading", "autograde", ASSIGNMENT]
    subprocess.run(
        [*command, "--jobs", str(jobs), "--no-progress"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def _machine() -> str:
    """The machine in words: cores, CPU model, Python, torch, GPU."""
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    gpu = "a GPU" if torch.cuda.is_available() else "no GPU"
    return (
        f"a {os.cpu_count()}-core {models[0] if models else cpu} {platform.machine()} machine "
        f"(Python {platform.python_version()}, torch {torch.__version__}, {gpu})"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also write the figures as JSON (the README "
        "quotes benchmarks/results/grading.json: python benchmarks/report.py)",
    )
    args = parser.parse_args(argv)
    name, text = submission(ASSIGNMENT)
    timings = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for i in range(args.batch):
                target = folder / "submitted" / f"student{i:02d}" / ASSIGNMENT
                target.mkdir(parents=True)
                (target / name).write_text(text)
            timings[jobs] = _run(folder, jobs, args.batch)
    run = {
        "machine": _machine(),
        "assignment": ASSIGNMENT,
        "batch": args.batch,
        "seconds": {str(jobs): seconds for jobs, seconds in timings.items()},
    }
    print(f"machine: {run['machine']}")
    print(
        f"--jobs 1: {timings[1]:.1f} s for {args.batch} submissions "
        f"({timings[1] / args.batch:.1f} s per honest submission)"
    )
    print(f"--jobs 2: {timings[2]:.1f} s, speed-up {timings[1] / timings[2]:.2f}x")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(run, indent=1) + "\n")
    return run


if __name__ == "__main__":
    main()
