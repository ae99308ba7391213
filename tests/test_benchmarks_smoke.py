"""Smoke runs of the benchmark scripts, so that they cannot rot (no timing asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
