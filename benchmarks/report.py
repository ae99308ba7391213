"""The README's measured figures, written from the stored runs of the benchmark scripts.

The tables and sentences of numbers in README.md ("Benchmarks", and the grader's speed under
"For instructors") are generated, never typed: each lies between two markers

    <!-- generated: NAME (python benchmarks/report.py) -->
    ...
    <!-- end generated: NAME -->

and is rendered from a stored run in ``benchmarks/results/``:

- ``cpu.json`` (and ``cuda.json`` once a GPU has run it): ``make bench`` saves it
  (``benchmarks/compare.py --save``);
- ``grading.json``: ``python -m grading.bench --save benchmarks/results/grading.json``.

    python benchmarks/report.py           # rewrite the generated blocks of README.md
    python benchmarks/report.py --check   # exit 1 if README.md differs (make test checks it)

The book's appendix reads the same files when it is built.  This module needs no torch.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"

TABLE_HEADER = (
    "| loss | size | peer | ours (ms) | peer (ms) | ratio (peer/ours) | peak MiB ours / peer |\n"
    "|---|---|---|---:|---:|---:|---:|"
)


def table_row(row: dict) -> str:
    """One row of the markdown table, from a row of a saved run."""

    def mib(value):
        return "-" if value is None else f"{value:.1f}"

    return (
        f"| {row['name']} | {row['size']} | {row['peer']} | {row['ours_ms']:.3f} "
        f"| {row['peer_ms']:.3f} | {row['ratio']:.2f} "
        f"| {mib(row['ours_mib'])} / {mib(row['peer_mib'])} |"
    )


def load(name: str) -> dict | None:
    """The stored run ``benchmarks/results/<name>.json``, or None if there is none."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def speed_block(run: dict) -> str:
    """The benchmark table of one run of compare.py, with its machine and targets."""
    if run["quick"]:
        raise ValueError("a --quick run times tiny inputs: store a full run of compare.py")
    lines = [
        f"One {run['device'].upper()} run of `benchmarks/compare.py` ({run['machine']}; "
        f"median of {run['repeat']} interleaved rounds):",
        "",
        TABLE_HEADER,
        *(table_row(row) for row in run["rows"]),
    ]
    if run["targets"]:
        lines.append("")
        lines += [f"target: {t['title']}: {t['verdict']}  " for t in run["targets"]]
        lines[-1] = lines[-1].rstrip()
    return "\n".join(lines)


def grading_block(run: dict) -> str:
    """The grader's scaling table, from one run of ``python -m grading.bench``."""
    batch = run["batch"]
    names = {"local": "local processes (`--jobs N`)", "dask": "Dask workers (`--scheduler`)"}
    lines = [
        f"`python -m grading.bench` measured on {run['machine']}, grading {batch} honest "
        f"`{run['assignment']}` submissions (and the canary) per run:",
        "",
        "| engine | workers | batch (s) | per submission (s) | one submission in its "
        "worker (s, median) | speed-up over 1 | 1,000 submissions (h) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    in_worker = run.get("submission_seconds", {})
    for engine, times in run["seconds"].items():
        one = times.get("1")
        for workers, seconds in sorted(times.items(), key=lambda item: int(item[0])):
            per = seconds / batch
            speedup = f"{one / seconds:.2f}x" if one else "-"
            each = in_worker.get(engine, {}).get(workers)
            each_text = f"{each:.1f}" if each is not None else "-"
            lines.append(
                f"| {names.get(engine, engine)} | {workers} | {seconds:.1f} | {per:.1f} "
                f"| {each_text} | {speedup} | {per * 1000 / 3600:.1f} |"
            )
    return "\n".join(lines)


BLOCKS = {"cpu-benchmark": ("cpu", speed_block), "grading-speed": ("grading", grading_block)}
MARKED = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) \(python benchmarks/report.py\) -->\n)"
    r"(?P<body>.*?)"
    r"\n?<!-- end generated: (?P=name) -->",
    re.DOTALL,
)


def render(text: str) -> str:
    """``text`` with every generated block rendered from its stored run."""

    def block(match: re.Match) -> str:
        name = match.group("name")
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r}; known: {sorted(BLOCKS)}")
        stored, renderer = BLOCKS[name]
        run = load(stored)
        body = renderer(run) if run else f"(no stored run: benchmarks/results/{stored}.json)"
        return f"{match.group(1)}{body}\n<!-- end generated: {name} -->"

    return MARKED.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    names = {match.group("name") for match in MARKED.finditer(text)}
    if names != set(BLOCKS):
        print(f"README.md has the generated blocks {sorted(names)}, expected {sorted(BLOCKS)}")
        return 1
    rendered = render(text)
    if args.check:
        if rendered != text:
            print(
                "README.md's measured figures differ from benchmarks/results/: "
                "run python benchmarks/report.py"
            )
            return 1
        return 0
    README.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
