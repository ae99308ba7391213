"""Shared fixtures: every device test runs on the CPU and, where present, on CUDA."""

from __future__ import annotations

import pytest
import torch

# Every family's cases registered in cvloss_ref._catalogue.CATALOGUE, whichever tests run:
# cvloss_ref.testing imports them on its first check, and a test that reads the catalogue
# first (run alone, or first on its xdist worker) would otherwise find it empty.
import cvloss_ref.cases  # noqa: F401
from tests._env import skip_unless_ci

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=["cpu", "cuda"])
def device(request: pytest.FixtureRequest) -> torch.device:
    """A device to run on; the CUDA variant is skipped where no GPU is present."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    return torch.device(request.param)


def pytest_configure(config: pytest.Config) -> None:
    """Inductor's compile cache is private to this test process.

    It is machine-wide by default (``/tmp/torchinductor_<user>``): another test session, a
    book build or a user's script compiling at the same time shares it.  The compiled-path
    tests of tests/test_compile.py once failed with a ``CppCompileError`` in a run beside
    other jobs and never alone; a cache of the session's own rules that interference out.
    """
    import os
    import tempfile

    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="cvloss-inductor-")
        config.stash[_OWN_INDUCTOR_CACHE] = os.environ["TORCHINDUCTOR_CACHE_DIR"]


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    if _OWN_INDUCTOR_CACHE in config.stash:
        shutil.rmtree(config.stash[_OWN_INDUCTOR_CACHE], ignore_errors=True)


_OWN_INDUCTOR_CACHE = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests that share an expensive fixture on one pytest-xdist worker.

    `make test` runs the suite on two workers (``-n 2 --dist loadgroup``).  A module- or
    session-scoped fixture of this suite (the built book, a sandboxed grading batch) is
    created once per worker that needs it, so the tests sharing one, directly or through
    other fixtures, are put in one ``xdist_group``; the rest are balanced freely.
    """
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    shared_by_item = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        shared = sorted(
            f"{definitions[-1].baseid}::{name}"
            for name, definitions in info.name2fixturedefs.items()
            if definitions
            and definitions[-1].scope != "function"
            and getattr(definitions[-1].func, "__module__", "").startswith("tests")
        )
        for other in shared[1:]:
            parent[find(other)] = find(shared[0])
        if shared:
            shared_by_item[item] = shared[0]
    for item, key in shared_by_item.items():
        item.add_marker(pytest.mark.xdist_group(find(key)))


@pytest.fixture
def generator() -> torch.Generator:
    """A seeded CPU generator so that every test draws the same inputs."""
    return torch.Generator().manual_seed(0)


# --------------------------------------------------------------------------------------
# The built book, shared by tests/test_book.py and tests/test_book_browser.py so that a
# test session builds it (executing every chapter) once.
# --------------------------------------------------------------------------------------

BOOK_BUILD_TIMEOUT_S = 540  # under pytest-timeout's 600 s; a clean build takes 3-5 min
BUILD_TEST = "test_book_builds_without_warnings"  # tests/test_book.py reports a failed build


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory):
    """Build the whole book once, as `make book` does, into a temporary directory.

    Returns a namespace with ``returncode``, ``log`` (the end of the build's output),
    ``failure`` (``None``, or what went wrong in a few lines: the chapters whose cells
    failed and their errors) and ``html`` (the folder of the built HTML).
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
        skip_unless_ci(f"jupyter-book is not installed next to {sys.executable}")
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
    # One torch thread per kernel unless the caller chose, as in `make book` (the Makefile).
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        result = subprocess.run(
            command,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=BOOK_BUILD_TIMEOUT_S,
            check=False,
        )
        returncode, log = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as error:
        returncode = -1
        log = f"the build took more than {BOOK_BUILD_TIMEOUT_S} s\n{error.stdout or ''}"
    html = out / "_build" / "html"
    failure = None if returncode == 0 else _build_failure(log, html / "reports")
    return SimpleNamespace(returncode=returncode, log=log[-6000:], failure=failure, html=html)


def _build_failure(log: str, reports) -> str:
    """What a failed build says, shortened to its cause.

    myst-nb writes the traceback of each chapter whose execution failed to
    ``reports/<chapter>.err.log``; Sphinx prints one ``WARNING:`` or ``ERROR:`` line per
    problem.  The summary keeps those (the last lines of each traceback), not the progress.
    """
    import re

    parts = []
    for report in sorted(reports.rglob("*.err.log")) if reports.is_dir() else []:
        text = re.sub(r"\x1b\[[0-9;]*m", "", report.read_text(errors="replace"))
        lines = [line for line in text.splitlines() if line]
        # The exception (an AssertionError, a CellTimeoutError, ...), then the traceback's end
        # (for a time-out, nbclient ends with a preview of the cell instead).
        raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        shown = raised[-1:] + [line for line in lines[-4:] if line not in raised[-1:]]
        tail = "\n    ".join(shown)
        parts.append(f"{report.relative_to(reports)}: a cell failed:\n    {tail}")
    warnings = [
        line
        for line in log.splitlines()
        if re.search(r"\b(WARNING|ERROR|Error|Traceback)\b", line) and "reports/" not in line
    ]
    parts += warnings[:20]
    return "\n".join(parts) or log[-3000:]


@pytest.fixture(scope="session")
def book_html(request: pytest.FixtureRequest, built_book):
    """The built HTML, for the tests that read or browse it.

    When the build failed, tests/test_book.py's build test reports why, once; the tests that
    need the HTML are then skipped with a pointer to it (one failure, one message).  A
    session that does not run the build test fails them instead, so the failure is never
    hidden behind skips.
    """
    if built_book.returncode == 0:
        return built_book.html
    reporter = [item.nodeid for item in request.session.items if item.name == BUILD_TEST]
    if reporter:
        pytest.skip(f"the book did not build; {reporter[0]} reports why")
    pytest.fail(f"the book did not build:\n{built_book.failure}", pytrace=False)
