"""Benchmark the grader: how the time to grade a batch of honest ``a02_classification``
submissions scales with workers, local processes (``--jobs N``) and Dask workers on this
machine (``--scheduler``), and what 1,000 submissions would take (not a test; run by hand)::

    .venv/bin/python -m grading.bench [--batch 8] [--workers 1 2 4] [--engines local dask]
                                      [--save benchmarks/results/grading.json]

Each run grades fresh copies of one honest submission in a private grading folder, in the
sandbox, with the canary first, exactly as ``python -m grading autograde`` does; its time
is the command's wall time (a local run includes starting the worker processes; a Dask
run does not include starting the cluster, which outlives batches).  The projection for
1,000 submissions is the batch's time per submission times 1,000, an upper bound (the
canary and start-up are paid once per command, not per submission).  The README quotes
the saved run (``python benchmarks/report.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .course import ROOT
from .demo import submission

ASSIGNMENT = "a02_classification"
ENGINES = ("local", "dask")
#: Seconds a Dask scheduler and its workers may take to start.
CLUSTER_START_S = 180


def _grade(folder: Path, engine: list[str]) -> float:
    """Seconds ``python -m grading autograde`` takes on the batch in ``folder``."""
    env = dict(os.environ, CVLOSS_GRADING_DIR=str(folder))
    start = time.perf_counter()
    command = [sys.executable, "-m", "grading", "autograde", ASSIGNMENT, "--no-progress"]
    done = subprocess.run([*command, *engine], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command + engine)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


@contextlib.contextmanager
def local_cluster(workers: int, folder: Path):
    """A Dask scheduler and ``workers`` one-thread workers on 127.0.0.1, started from this
    checkout as grading/README.md says; yields the scheduler's address."""
    from distributed import Client

    # Dask's own scratch files in the batch's folder, deleted with it.
    env = dict(os.environ, PYTHONPATH=str(ROOT), DASK_TEMPORARY_DIRECTORY=str(folder))
    schedule = folder / "scheduler.json"
    log = open(folder / "cluster.log", "wb")
    processes = []

    def start(*command: str) -> None:
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=log, stderr=log
            )
        )

    try:
        scheduler = ["--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        start("distributed.cli.dask_scheduler", *scheduler, "--scheduler-file", str(schedule))
        deadline = time.monotonic() + CLUSTER_START_S
        while not schedule.exists():
            if processes[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start (see cluster.log)")
            time.sleep(0.2)
        time.sleep(0.2)
        address = json.loads(schedule.read_text())["address"]
        for _ in range(workers):
            worker = ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]
            start("distributed.cli.dask_worker", address, *worker)
        with Client(address, timeout=CLUSTER_START_S, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=CLUSTER_START_S)
        yield address
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=30)
        log.close()


def run_one(engine: str, workers: int, batch: int) -> tuple[float, float]:
    """Seconds to grade ``batch`` honest submissions with ``workers`` workers of ``engine``,
    and the median of the seconds each submission took in its worker (``results.json``:
    from its notebook's copy to its verdicts, the command's start-up and the canary
    left out)."""
    name, text = submission(ASSIGNMENT)
    with tempfile.TemporaryDirectory(prefix="cvloss-bench-") as tmp:
        folder = Path(tmp)
        for i in range(batch):
            target = folder / "submitted" / f"student{i:02d}" / ASSIGNMENT
            target.mkdir(parents=True)
            (target / name).write_text(text)
        if engine == "local":
            took = _grade(folder, ["--jobs", str(workers)])
        else:
            with local_cluster(workers, folder) as address:
                took = _grade(folder, ["--scheduler", address])
        each = [
            json.loads(path.read_text())["seconds"]
            for path in folder.glob(f"autograded/*/{ASSIGNMENT}/results.json")
        ]
        return took, statistics.median(each)


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


def line(
    engine: str, workers: int, seconds: float, batch: int, one: float | None, each: float
) -> str:
    """One printed line of the table (``one``: the same engine's time with one worker;
    ``each``: the median submission's own seconds in its worker)."""
    per = seconds / batch
    text = (
        f"{engine} x{workers}: {seconds:.1f} s for {batch} submissions ({per:.1f} s each, "
        f"{each:.1f} s in the worker; 1,000 in {per * 1000 / 3600:.1f} h)"
    )
    return text + (f", {one / seconds:.2f}x over one worker" if one and workers != 1 else "")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="submissions per run (default 8)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="default: 1 2 4")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also write the figures as JSON (the README "
        "quotes benchmarks/results/grading.json: python benchmarks/report.py)",
    )
    args = parser.parse_args(argv)
    if args.batch < 1 or min(args.workers) < 1:
        parser.error(f"--batch and --workers must be >= 1, got {args.batch} and {args.workers}")
    seconds: dict[str, dict[str, float]] = {engine: {} for engine in args.engines}
    in_worker: dict[str, dict[str, float]] = {engine: {} for engine in args.engines}
    machine = _machine()
    print(f"machine: {machine}", flush=True)
    for workers in args.workers:  # the engines alternate, so that drift hits both alike
        for engine in args.engines:
            took, each = run_one(engine, workers, args.batch)
            seconds[engine][str(workers)] = took
            in_worker[engine][str(workers)] = each
            one = seconds[engine].get("1")
            print(line(engine, workers, took, args.batch, one, each), flush=True)
    run = {
        "machine": machine,
        "assignment": ASSIGNMENT,
        "batch": args.batch,
        "seconds": seconds,
        "submission_seconds": in_worker,
    }
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(run, indent=1) + "\n")
    return run


if __name__ == "__main__":
    main()
