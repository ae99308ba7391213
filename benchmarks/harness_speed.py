"""How long `cvloss_ref.testing.check_loss` takes for each loss of the catalogue.

The harness promises under a second per call on a CPU, for every loss, so that a
student's visible tests give feedback at once and a grader can afford hidden
tests.  This script measures it (median of several runs after a warm-up) and
prints a table; it asserts nothing, because timings depend on the machine.

    python benchmarks/harness_speed.py [--repeat 5] [--names cross_entropy giou_loss]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import cvloss_ref
from cvloss_ref.testing import check_loss, loss_names, unguarded_copy


def measure(name: str, repeat: int) -> tuple[float, int, bool]:
    """Median seconds of one check, the number of checks, and whether it passed."""
    reference = unguarded_copy(getattr(cvloss_ref, name))
    result = check_loss(reference, name)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = check_loss(reference, name)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(result.passed), result.ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per loss")
    parser.add_argument("--names", nargs="*", help="losses to time (default: all)")
    args = parser.parse_args(argv)
    names = args.names or loss_names()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    print(f"{'loss':34s} {'checks':>6s} {'seconds':>8s}")
    worst = 0.0
    for name in names:
        seconds, checks, ok = measure(name, args.repeat)
        worst = max(worst, seconds)
        flag = "" if ok else "  (FAILED)"
        print(f"{name:34s} {checks:6d} {seconds:8.3f}{flag}")
    print(f"slowest: {worst:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
