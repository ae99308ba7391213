"""Smoke runs of the benchmark scripts, so that they cannot rot (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_harness_speed_runs(capsys):
    harness_speed = _load("harness_speed")
    assert harness_speed.main(["--repeat", "1", "--names", "mse_loss", "cross_entropy"]) == 0
    out = capsys.readouterr().out
    assert "cross_entropy" in out and "slowest" in out
    assert "FAILED" not in out


def test_compare_quick_runs(capsys):
    compare = _load("compare")
    assert compare.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| loss | size | peer |" in out
    for name in ("giou_loss", "sigmoid_focal_loss", "total_variation", "circle_loss"):
        assert f"| {name} |" in out


def test_compare_only_selects_losses(capsys):
    compare = _load("compare")
    assert compare.main(["--quick", "--only", "ciou_loss"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ciou")]
    assert len(rows) == 1


def test_cpu_peak_memory_counts_the_allocations_of_one_call():
    compare = _load("compare")
    x = torch.randn(1000, 250)  # 1 MB
    one_mb = x.numel() * x.element_size()

    def two_temporaries() -> None:
        y = x * 2  # allocated: 1 MB held
        z = y + 1  # 2 MB held: the peak
        del y, z

    def one_at_a_time() -> None:
        for _ in range(3):
            (x * 2).sum()  # each temporary freed before the next

    assert compare._peak_memory(two_temporaries, "cpu") >= 2 * one_mb
    assert one_mb <= compare._peak_memory(one_at_a_time, "cpu") < 2 * one_mb


def test_targets_report_holds_missed_and_not_measured(capsys):
    compare = _load("compare")

    def row(name, numel, ratio):
        return (compare.Pair(name, f"{numel:.0e}", "peer", None, None, (), numel=numel), ratio)

    rows = [
        row("giou_loss", 10**5, 2.0),
        row("ciou_loss", 10**5, 1.2),
        row("giou_loss", 10**6, 0.5),
    ]
    compare._target("fast at 1e5", rows, 1.5, 10**5)
    compare._target("fast at 1e6", rows[:2], 1.5, 10**6)
    compare._target("every ratio", rows[:1], 0.9)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "target: fast at 1e5: MISSED by ciou_loss 1e+05 (1.20)",
        "target: fast at 1e6: not measured (--only left them out)",
        "target: every ratio: holds",
    ]


# ------------------------------------------------ the README's figures come from stored runs


def test_compare_saves_a_run_that_the_report_renders(tmp_path):
    compare, report = _load("compare"), _load("report")
    saved = tmp_path / "run.json"
    assert compare.main(["--quick", "--save", str(saved)]) == 0
    run = json.loads(saved.read_text())
    assert {row["name"] for row in run["rows"]} >= {"giou_loss", "circle_loss"}
    with pytest.raises(ValueError, match="--quick"):
        report.speed_block(run)  # a smoke run's timings never reach the README
    run["quick"] = False
    table = report.speed_block(run)
    giou = next(row for row in run["rows"] if row["name"] == "giou_loss")
    assert f"| giou_loss | {giou['size']} | {giou['peer']} | {giou['ours_ms']:.3f} |" in table
    assert run["machine"] in table


def test_compare_refuses_to_save_a_partial_run(tmp_path):
    compare = _load("compare")
    with pytest.raises(SystemExit):
        compare.main(["--quick", "--only", "giou_loss", "--save", str(tmp_path / "x.json")])


def test_readme_figures_are_the_stored_runs():
    """README.md's generated blocks equal what benchmarks/report.py renders from
    benchmarks/results/: a number edited by hand, or a new run not written in, fails."""
    report = _load("report")
    assert report.load("cpu") is not None and report.load("grading") is not None
    assert report.main(["--check"]) == 0, "run: python benchmarks/report.py"


def test_a_hand_edited_figure_is_caught():
    report = _load("report")
    text = report.README.read_text(encoding="utf-8")
    row = report.table_row(report.load("cpu")["rows"][0])
    assert row in text
    edited = text.replace(row, row.replace(" | ", " | 9", 1))
    assert report.render(edited) != edited
    assert report.render(text) == text
