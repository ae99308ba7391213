"""Forward + backward time of cvloss_ref against the libraries people would otherwise use.

Each loss is timed against its peer on the same inputs, interleaved in one run (blocks
of calls in the order peer, ours, ours, peer, repeated), and the table reports the
median time per call of each side and the ratio peer / ours: above 1, cvloss_ref is
faster.  One "call" is the loss and the gradient of its scalar ("mean" or "sum")
with respect to the model's outputs (``torch.autograd.grad``).

    python benchmarks/compare.py                      # CPU, every pair
    python benchmarks/compare.py --device cuda        # the same on a GPU
    python benchmarks/compare.py --only giou_loss sigmoid_focal_loss --repeat 9
    python benchmarks/compare.py --quick              # tiny sizes: the smoke run

Peak memory is the most memory allocated at any moment of one call of each side, above
what the inputs already hold: ``torch.cuda.max_memory_allocated`` on a GPU, and on a CPU
the running sum of the allocations and frees that PyTorch's profiler records (measured in
a separate call, so that profiling does not slow the timed ones).  On a CPU set
``MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184
MALLOC_TOP_PAD_=1073741824`` (``make bench`` does):
otherwise glibc returns large blocks to the system after each call and timings flip
between 1x and 4x.  After the table, the issue's targets are checked and printed; the
script asserts nothing and exits 0 whatever the timings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import cvloss_ref as cv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import TABLE_HEADER, table_row  # benchmarks/report.py

# Minimum ratio (peer / ours) that the issue asks for, on CPU: every pair >= 0.9, and
# these at 1e5 elements >= 1.5.
CPU_FLOOR = 0.9
CPU_FAST = {"giou_loss", "diou_loss", "ciou_loss", "sigmoid_focal_loss"}
CPU_FAST_RATIO = 1.5
# On CUDA: the box losses at 1e6 boxes >= 5x torchvision's eager versions.
GPU_BOX_RATIO = 5.0


@dataclass
class Pair:
    """One row: ``ours`` and ``peer`` called as ``fn(*inputs)`` return a scalar loss;
    ``grad`` are the inputs to differentiate (the model's outputs)."""

    name: str
    size: str
    peer_name: str
    ours: Callable
    peer: Callable
    inputs: tuple
    grad: tuple[int, ...] = (0,)
    numel: int = 0  # elements (or boxes) for the 1e5 targets


# ---------------------------------------------------------------------------- inputs


def _boxes(n: int, generator: torch.Generator, device: str) -> torch.Tensor:
    corner = torch.rand(n, 2, generator=generator) * 100
    size = torch.rand(n, 2, generator=generator) * 50 + 1
    return torch.cat((corner, corner + size), -1).to(device)


def _always_compiled(loss: Callable) -> Callable:
    """``loss`` run with ``cvloss_ref.set_compile("always")``, the mode restored after."""

    def run(*inputs):
        mode = cv.compile_mode()
        cv.set_compile("always")
        try:
            return loss(*inputs)
        finally:
            cv.set_compile(mode)

    return run


def _pairs(device: str, quick: bool) -> list[Pair]:
    """Every (loss, size, peer) row, with inputs built from one seeded generator."""
    import kornia
    import torchvision.ops as tvo
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners

    g = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(device)

    def labels(n, classes):
        return torch.randint(classes, (n,), generator=g).to(device)

    pairs: list[Pair] = []
    elements = [1_000] if quick else [100_000, 1_000_000]

    # torch.nn.functional
    for rows, classes in [(10, 10)] if quick else [(1_000, 100), (1_000, 1_000)]:
        size = f"{rows}x{classes}"
        inputs = (randn(rows, classes), labels(rows, classes))
        pairs.append(
            Pair(
                "cross_entropy (smoothing 0.1)",
                size,
                "F.cross_entropy",
                lambda x, t: cv.cross_entropy(x, t, label_smoothing=0.1),
                lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                inputs,
            )
        )
    for n in elements:
        logits, target = randn(n), (torch.rand(n, generator=g) < 0.3).float().to(device)
        pairs.append(
            Pair(
                "binary_cross_entropy_with_logits",
                f"{n:.0e}",
                "F.binary_cross_entropy_with_logits",
                cv.binary_cross_entropy_with_logits,
                F.binary_cross_entropy_with_logits,
                (logits, target),
                numel=n,
            )
        )
        probs = torch.rand(n, generator=g).clamp(0.01, 0.99).to(device)
        pairs.append(
            Pair(
                "binary_cross_entropy",
                f"{n:.0e}",
                "F.binary_cross_entropy",
                cv.binary_cross_entropy,
                F.binary_cross_entropy,
                (probs, target),
                numel=n,
            )
        )
        pred, goal = randn(n), randn(n)
        pairs.append(
            Pair(
                "smooth_l1_loss",
                f"{n:.0e}",
                "F.smooth_l1_loss",
                cv.smooth_l1_loss,
                F.smooth_l1_loss,
                (pred, goal),
                numel=n,
            )
        )
        pairs.append(
            Pair(
                "huber_loss",
                f"{n:.0e}",
                "F.huber_loss",
                cv.huber_loss,
                F.huber_loss,
                (pred, goal),
                numel=n,
            )
        )
    for batch in [8] if quick else [4_096]:
        triplet = (randn(batch, 128), randn(batch, 128), randn(batch, 128))
        pairs.append(
            Pair(
                "triplet_margin_loss",
                f"{batch}x128",
                "F.triplet_margin_loss",
                cv.triplet_margin_loss,
                F.triplet_margin_loss,
                triplet,
                grad=(0, 1, 2),
            )
        )

    # torchvision.ops
    box_peers = [
        ("giou_loss", cv.giou_loss, tvo.generalized_box_iou_loss, "generalized_box_iou_loss"),
        ("diou_loss", cv.diou_loss, tvo.distance_box_iou_loss, "distance_box_iou_loss"),
        ("ciou_loss", cv.ciou_loss, tvo.complete_box_iou_loss, "complete_box_iou_loss"),
    ]
    for n in [100] if quick else [1_000, 100_000, 1_000_000]:
        pred, target = _boxes(n, g, device), _boxes(n, g, device)
        for name, ours, peer, peer_name in box_peers:
            pairs.append(
                Pair(
                    name,
                    f"{n:.0e} boxes",
                    f"torchvision.ops.{peer_name}",
                    ours,
                    lambda p, t, peer=peer: peer(p, t, reduction="mean"),
                    (pred, target),
                    numel=n,
                )
            )
    if not quick:
        # The same losses with the kernel generated by torch.compile (cvloss_ref's
        # "always" mode); on CUDA the rows above at 1e5 and 1e6 boxes are compiled already
        # ("auto").  The first call, in the warm-up, pays the compilation.
        n = 1_000_000
        pred, target = _boxes(n, g, device), _boxes(n, g, device)
        for name, ours, peer, peer_name in box_peers:
            pairs.append(
                Pair(
                    f"{name} [torch.compile]",
                    f"{n:.0e} boxes",
                    f"torchvision.ops.{peer_name}",
                    _always_compiled(ours),
                    lambda p, t, peer=peer: peer(p, t, reduction="mean"),
                    (pred, target),
                    numel=n,
                )
            )
    for n in elements:
        logits, target = randn(n), (torch.rand(n, generator=g) < 0.1).float().to(device)
        pairs.append(
            Pair(
                "sigmoid_focal_loss",
                f"{n:.0e}",
                "torchvision.ops.sigmoid_focal_loss",
                cv.sigmoid_focal_loss,
                lambda x, t: tvo.sigmoid_focal_loss(x, t, reduction="mean"),
                (logits, target),
                numel=n,
            )
        )

    # kornia
    for rows, classes in [(10, 5)] if quick else [(10_000, 10), (1_000, 1_000)]:
        inputs = (randn(rows, classes), labels(rows, classes))
        pairs.append(
            Pair(
                "softmax_focal_loss",
                f"{rows}x{classes}",
                "kornia.losses.focal_loss",
                cv.softmax_focal_loss,
                lambda x, t: kornia.losses.focal_loss(x, t, alpha=None, reduction="mean"),
                inputs,
            )
        )
    for shape in [(1, 3, 8, 8)] if quick else [(8, 3, 256, 256)]:
        images = randn(*shape)
        pairs.append(
            Pair(
                "total_variation",
                "x".join(map(str, shape)),
                "kornia.losses.total_variation",
                lambda x: cv.total_variation(x, reduction="sum"),
                lambda x: kornia.losses.total_variation(x, reduction="sum").sum(),
                (images,),
            )
        )

    # pytorch-metric-learning
    pml_triplet = pml_losses.TripletMarginLoss(margin=1.0)
    pml_miner = pml_miners.BatchHardMiner()
    pml_circle = pml_losses.CircleLoss(m=0.25, gamma=256)
    for batch in [16] if quick else [512, 4_096]:
        inputs = (randn(batch, 128), labels(batch, max(batch // 8, 2)))
        pairs.append(
            Pair(
                "batch_hard_triplet_loss",
                f"B={batch}",
                "pml TripletMarginLoss+BatchHardMiner",
                cv.batch_hard_triplet_loss,
                lambda e, y: pml_triplet(e, y, pml_miner(e, y)),
                inputs,
            )
        )
        pairs.append(
            Pair(
                "circle_loss",
                f"B={batch}",
                "pml CircleLoss",
                cv.circle_loss,
                pml_circle,
                inputs,
            )
        )
    return pairs


# --------------------------------------------------------------------------- timing


def _call(fn: Callable, inputs: tuple, grad: tuple[int, ...]) -> Callable[[], None]:
    leaves = [
        x.detach().requires_grad_(i in grad) if torch.is_tensor(x) and x.is_floating_point() else x
        for i, x in enumerate(inputs)
    ]
    wanted = [leaves[i] for i in grad]

    def step() -> None:
        loss = fn(*leaves)
        torch.autograd.grad(loss, wanted)

    return step


def _block(step: Callable[[], None], number: int, device: str) -> float:
    """Seconds per call over ``number`` calls."""
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(number):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / number


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ library logs every start and stop)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _peak_memory(step: Callable[[], None], device: str) -> int | None:
    """Bytes allocated at the peak of one call, above what was allocated before it."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    # On a CPU PyTorch keeps no peak counter, but its profiler records every allocation
    # and free of the CPU allocator: the running sum of those, in time order, peaks at
    # the same place.
    from torch.profiler import ProfilerActivity, profile

    try:
        with (
            _quiet_stderr(),
            profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
        ):
            step()
        events = prof.profiler.kineto_results.events()
    except (RuntimeError, AttributeError):  # a profiler without the kineto results
        return None
    changes = sorted(
        (event.start_ns(), event.nbytes())
        for event in events
        if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU
    )
    held = peak = 0
    for _, nbytes in changes:
        held += nbytes
        peak = max(peak, held)
    return peak


def measure(pair: Pair, repeat: int, device: str, block_s: float) -> dict:
    """Median seconds per call of each side, interleaved as peer, ours, ours, peer."""
    ours = _call(pair.ours, pair.inputs, pair.grad)
    peer = _call(pair.peer, pair.inputs, pair.grad)
    for step in (peer, ours):  # warm-up (and calibration)
        step()
    once = min(_block(peer, 1, device), _block(ours, 1, device))
    number = max(1, int(block_s / max(once, 1e-6)))
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    for _ in range(repeat):
        for side, step in (("peer", peer), ("ours", ours), ("ours", ours), ("peer", peer)):
            times[side].append(_block(step, number, device))
    return {
        "ours": statistics.median(times["ours"]),
        "peer": statistics.median(times["peer"]),
        "ours_mem": _peak_memory(ours, device),
        "peer_mem": _peak_memory(peer, device),
    }


def _machine(device: str) -> str:
    """The machine and versions, as the first line of the table says them."""
    if device == "cuda":
        where = torch.cuda.get_device_name()
    else:
        cpu = platform.processor() or platform.machine()
        where = f"{os.cpu_count()}-core {_cpu_model() or cpu} {platform.machine()} CPU"
    versions = [f"torch {torch.__version__}"]
    for module in ("torchvision", "kornia", "pytorch_metric_learning"):
        try:
            versions.append(f"{module.replace('_', '-')} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module.replace('_', '-')} (not installed)")
    return (
        f"{where}, {torch.get_num_threads()} torch thread(s), {', '.join(versions)}, "
        f"Python {platform.python_version()}"
    )


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), e.g. "AMD EPYC 7B13"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _target(title: str, rows: list, floor: float, numel: int | None = None) -> dict:
    """Whether every (pair, ratio) row (of ``numel`` elements, if given) reaches ``floor``:
    printed, and returned as ``{"title", "verdict"}``."""
    rows = [(p, r) for p, r in rows if numel is None or p.numel == numel]
    missed = [f"{p.name} {p.size} ({r:.2f})" for p, r in rows if r < floor]
    if not rows:
        verdict = "not measured (--only left them out)"
    else:
        verdict = "MISSED by " + ", ".join(missed) if missed else "holds"
    print(f"target: {title}: {verdict}")
    return {"title": title, "verdict": verdict}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (smoke run)")
    parser.add_argument("--only", nargs="*", metavar="NAME", help="losses to time (default all)")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds per pair")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: steadier)"
    )
    parser.add_argument(
        "--block", type=float, default=0.05, help="seconds per timed block of calls"
    )
    parser.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also write the run as JSON (benchmarks/results/*.json feed the README and "
        "the book's appendix: python benchmarks/report.py)",
    )
    args = parser.parse_args(argv)
    if args.save and args.only:
        parser.exit(1, "compare.py: --save stores a whole run; leave out --only\n")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.exit(1, "compare.py: --device cuda asked for, but CUDA is not available\n")
    torch.set_num_threads(args.threads)
    repeat = 1 if args.quick else args.repeat
    block_s = 0.0 if args.quick else args.block

    pairs = _pairs(args.device, args.quick)
    if args.only:
        unknown = set(args.only) - {pair.name.split(" ")[0] for pair in pairs}
        if unknown:
            parser.exit(1, f"compare.py: unknown loss name(s): {', '.join(sorted(unknown))}\n")
        pairs = [pair for pair in pairs if pair.name.split(" ")[0] in args.only]

    machine = _machine(args.device)
    print(f"{machine}; forward + backward, median of {repeat} interleaved rounds")
    print()
    print(TABLE_HEADER)
    rows, results = [], []
    for pair in pairs:
        result = measure(pair, repeat, args.device, block_s)
        ratio = result["peer"] / result["ours"]
        results.append((pair, ratio))
        row = {
            "name": pair.name,
            "size": pair.size,
            "peer": pair.peer_name,
            "ours_ms": result["ours"] * 1e3,
            "peer_ms": result["peer"] * 1e3,
            "ratio": ratio,
            "ours_mib": None if result["ours_mem"] is None else result["ours_mem"] / 2**20,
            "peer_mib": None if result["peer_mem"] is None else result["peer_mem"] / 2**20,
        }
        rows.append(row)
        print(table_row(row), flush=True)

    targets = []
    if not args.quick:
        print()
        if args.device == "cuda":
            boxes = CPU_FAST - {"sigmoid_focal_loss"}
            gpu = [(p, r) for p, r in results if p.name.split(" ")[0] in boxes]
            targets.append(
                _target(
                    f"box losses >= {GPU_BOX_RATIO} at 1e6 boxes on CUDA",
                    gpu,
                    GPU_BOX_RATIO,
                    10**6,
                )
            )
        else:
            targets.append(_target(f"every ratio >= {CPU_FLOOR}", results, CPU_FLOOR))
            fast = [(p, r) for p, r in results if p.name in CPU_FAST]
            targets.append(
                _target(
                    f"box losses and sigmoid_focal_loss >= {CPU_FAST_RATIO} at 1e5",
                    fast,
                    CPU_FAST_RATIO,
                    10**5,
                )
            )
    if args.save:
        run = {
            "device": args.device,
            "machine": machine,
            "repeat": repeat,
            "quick": args.quick,
            "rows": rows,
            "targets": targets,
        }
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(run, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
