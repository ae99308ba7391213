"""Shared fixtures: every device test runs on the CPU and, where present, on CUDA."""

from __future__ import annotations

import pytest
import torch

from tests._env import skip_unless_ci

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=["cpu", "cuda"])
def device(request: pytest.FixtureRequest) -> torch.device:
    """A device to run on; the CUDA variant is skipped where no GPU is present."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return torch.device(request.param)


@pytest.fixture
def generator() -> torch.Generator:
    """A seeded CPU generator so that every test draws the same inputs."""
    return torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------------------
# The built book, shared by tests/test_book.py and tests/test_book_browser.py so that a
# test session builds it (executing every chapter) once.
# --------------------------------------------------------------------------------------

BOOK_BUILD_TIMEOUT_S = 540  # under pytest-timeout's 600 s; a clean build takes 1-3 min


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory):
    """Build the whole book once, as `make book` does, into a temporary directory.

    Returns a namespace with ``returncode``, ``log`` (the end of the build's output) and
    ``html`` (the folder of the built HTML).  Tests assert on ``returncode`` themselves,
    so that a failed build is reported with its log by each of them.
    """
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[1]
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    if not jupyter_book.exists():
        pytest.skip(f"jupyter-book is not installed next to {sys.executable}")
    if not (root / "book" / "_static" / "mathjax" / "tex-mml-chtml.js").is_file():
        # MathJax is served from the book (no CDN): install it like `make book` does.
        if shutil.which("npm") is None or shutil.which("make") is None:
            skip_unless_ci("MathJax is not installed and npm is missing: run `make mathjax`")
        subprocess.run(["make", "mathjax"], cwd=root, check=True, capture_output=True)

    out = tmp_path_factory.mktemp("book")
    command = [
        str(jupyter_book),
        "build",
        "--nitpick",
        "--warningiserror",
        "--keep-going",
        "--path-output",
        str(out),
        str(root),
    ]
    # One torch thread per kernel, as in `make book` (see the Makefile).
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        command,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=BOOK_BUILD_TIMEOUT_S,
        check=False,
    )
    return SimpleNamespace(
        returncode=result.returncode,
        log=(result.stdout + result.stderr)[-6000:],
        html=out / "_build" / "html",
    )
