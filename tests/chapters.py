"""Execute book chapters under stand-ins for "another CPU": the cross-machine check.

A chapter that trains a network or runs a simulation can pass on the author's machine and fail
on a reader's: another vector unit, another BLAS code path or another thread count changes the
rounding of every step, and a chaotic trajectory (a collapse, a GAN) can end elsewhere.  Each
*variant* below changes one of those paths on this machine; a chapter must reach the same
verdict (every assertion holds) under all of them.

    python tests/chapters.py                          # every training chapter, every variant
    python tests/chapters.py book/triplet-loss.md     # one chapter
    python tests/chapters.py --variants scalar-1,mkl-2 --outputs /tmp/runs book/gan-losses.md

``make check-chapters`` runs the first form; ``tests/test_book_variants.py`` runs it in CI.
``--outputs DIR`` keeps each run's printed output, to compare the numbers across variants.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

#: The variables that select a floating-point path.  A variant sets some of them and removes
#: the others from the environment, so that the caller's settings do not leak in.
PATH_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR")

#: name -> the variables it sets.  "native" is what this CPU does by default; "scalar" makes
#: ATen use its portable kernels instead of AVX2/AVX-512/NEON ones; "mkl" makes MKL take the
#: code path it takes on every x86 CPU (on an AMD CPU MKL takes another one than on Intel).
VARIANTS: dict[str, dict[str, str]] = {
    "native-1": {"OMP_NUM_THREADS": "1"},
    "native-2": {"OMP_NUM_THREADS": "2"},
    "scalar-1": {"OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default"},
    "scalar-2": {"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "default"},
    "mkl-1": {"OMP_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE"},
    "mkl-2": {"OMP_NUM_THREADS": "2", "MKL_CBWR": "COMPATIBLE"},
}

#: A chapter "trains or simulates" when its code cells contain one of these: an optimiser, or
#: a loop over steps or epochs.  Those are the chapters whose verdict can depend on rounding.
TRAINING_MARKERS = re.compile(r"torch\.optim\.|for (?:step|epoch|_) in range\(")
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)

#: The book's own limit per cell (_config.yml's ``execute: timeout``), so that a chapter this
#: check passes also builds.
CELL_TIMEOUT_S = int(yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["timeout"])


def training_chapters() -> list[Path]:
    """The chapters under book/ whose code trains a model or iterates a simulation."""
    return sorted(
        path
        for path in BOOK.glob("*.md")
        if any(TRAINING_MARKERS.search(cell) for cell in CODE_CELL.findall(path.read_text()))
    )


def variant_environment(name: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a run under variant ``name``."""
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for key in PATH_VARIABLES:
        env.pop(key, None)
    env.update(VARIANTS[name])
    env.setdefault("MPLBACKEND", "Agg")
    return env


# Runs in a fresh interpreter with the variant's environment: converts the MyST chapter to a
# notebook and executes it in a kernel that inherits that environment, from the chapter's
# folder, as jupyter-book does.  Prints every stream output, then one line of JSON.
_EXECUTE = r"""
import json, sys
import jupytext, nbclient
from nbclient.exceptions import CellExecutionError
path, timeout = sys.argv[1], int(sys.argv[2])
nb = jupytext.read(path)
client = nbclient.NotebookClient(
    nb, timeout=timeout, kernel_name="python3",
    resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}})
error = None
try:
    client.execute()
except CellExecutionError as exc:
    error = str(exc)
for cell in nb.cells:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            sys.stdout.write(out["text"])
print("\n@@RESULT@@" + json.dumps({"error": error}))
"""


@dataclass
class Run:
    """One chapter executed under one variant."""

    chapter: Path
    variant: str
    ok: bool
    seconds: float
    output: str  # what the chapter printed (stream outputs, in order)
    error: str  # the failing cell and its traceback, or ""

    @property
    def summary(self) -> str:
        """The error's last line: usually the AssertionError and its message."""
        lines = [line for line in self.error.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_chapter(chapter: Path, variant: str, timeout: int = CELL_TIMEOUT_S) -> Run:
    """Execute ``chapter`` in a fresh kernel under ``variant``."""
    import json

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _EXECUTE, str(chapter), str(timeout)],
        env=variant_environment(variant),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    output, marker, result = proc.stdout.rpartition("\n@@RESULT@@")
    if not marker:
        return Run(chapter, variant, False, seconds, proc.stdout, proc.stderr[-4000:])
    error = json.loads(result)["error"] or ""
    return Run(chapter, variant, not error, seconds, output, _strip_ansi(error))


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


class ThreadBudget:
    """At most ``cpus`` threads among the runs in flight (a run that wants more runs
    alone).  Two 2-thread runs side by side on a 2-core machine took 8-10 times as long
    as one alone (OpenMP threads spinning against each other), and the GAN chapter's
    training cell passed the book's 300 s limit under them."""

    def __init__(self, cpus: int):
        self.total = self.free = max(cpus, 1)
        self._changed = threading.Condition()

    @contextmanager
    def take(self, threads: int):
        threads = min(threads, self.total)
        with self._changed:
            self._changed.wait_for(lambda: self.free >= threads)
            self.free -= threads
        try:
            yield
        finally:
            with self._changed:
                self.free += threads
                self._changed.notify_all()


def run_all(chapters, variants, jobs: int = 2, outputs: Path | None = None) -> list[Run]:
    """Every chapter under every variant, up to ``jobs`` at a time and no more threads at
    a time than this machine has CPUs (:class:`ThreadBudget`); prints one line per run."""
    pairs = [(chapter, variant) for chapter in chapters for variant in variants]
    budget = ThreadBudget(os.cpu_count() or 1)

    def run_within_budget(pair):
        with budget.take(int(VARIANTS[pair[1]]["OMP_NUM_THREADS"])):
            return run_chapter(*pair)

    runs = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for run in pool.map(run_within_budget, pairs):
            verdict = "ok  " if run.ok else "FAIL"
            print(
                f"{verdict} {run.chapter.name:28} {run.variant:9} {run.seconds:6.1f} s"
                + ("" if run.ok else f"  {run.summary}"),
                flush=True,
            )
            if outputs is not None:
                outputs.mkdir(parents=True, exist_ok=True)
                name = f"{run.chapter.stem}.{run.variant}.txt"
                (outputs / name).write_text(run.output + "\n" + run.error)
            runs.append(run)
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "chapters",
        nargs="*",
        type=Path,
        help="chapter files (default: every chapter that trains or simulates)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--outputs", type=Path, help="folder for each run's printed output")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; expected some of {list(VARIANTS)}")
    chapters = [path.resolve() for path in args.chapters] or training_chapters()
    runs = run_all(chapters, variants, jobs=args.jobs, outputs=args.outputs)
    failed = [run for run in runs if not run.ok]
    for run in failed:
        print(f"\n--- {run.chapter.name} under {run.variant} ---\n{run.error[-3000:]}")
    print(f"\n{len(runs) - len(failed)} of {len(runs)} runs passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
