"""Smoke runs of the benchmark scripts, so that they cannot rot (no timing asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_harness_speed_runs(capsys):
    harness_speed = _load("harness_speed")
    assert harness_speed.main(["--repeat", "1", "--names", "mse_loss", "cross_entropy"]) == 0
    out = capsys.readouterr().out
    assert "cross_entropy" in out and "slowest" in out
    assert "FAILED" not in out
