"""The chapters that train or simulate reach the same verdict on "another CPU".

The book build (tests/test_book.py) executes every chapter natively with one torch thread.
Here each chapter that trains a model or iterates a simulation is executed again under the
variants of ``tests/chapters.py`` that stand for another CPU: torch's portable scalar
kernels (``ATEN_CPU_CAPABILITY=default``) and MKL's compatible code path
(``MKL_CBWR=COMPATIBLE``).  Every assertion in the chapter must hold under both.
A chapter author runs the same check with ``make check-chapters`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import chapters

# native-1 is the book build itself.  CI runs the one-thread variants of the other CPU
# paths: two torch threads on CI's two busy cores (the other pytest worker uses one) make
# every step wait on the thread pool, 10-25x slower, without reaching another verdict.
# `make check-chapters` runs all six variants; run it before changing a training chapter.
VARIANTS = ["scalar-1", "mkl-1"]
TRAINING = chapters.training_chapters()


def test_the_training_chapters_are_found():
    """The marker search finds the chapters known to train, and not a formula-only one."""
    names = {path.name for path in TRAINING}
    assert {"triplet-loss.md", "gan-losses.md", "diou-ciou.md", "style-transfer.md"} <= names
    assert "appendix-notation.md" not in names
    # information-theory searches the underflow threshold of exp by bisection, a loop
    # whose result depends on the exp kernel: it runs under every variant too.
    assert "information-theory.md" in names


def test_a_variant_sets_its_variables_and_drops_the_callers(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    env = chapters.variant_environment("scalar-2")
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["OMP_NUM_THREADS"] == "2"
    assert "MKL_CBWR" not in env


def test_the_thread_budget_never_runs_more_threads_than_cpus():
    # Runs of 2, 1, 2, 1 threads on a budget of 2: at most 2 threads in flight (a run
    # that wants 3 runs alone, counted as the whole budget).
    budget = chapters.ThreadBudget(2)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def run(threads):
        threads = min(threads, 2)
        with budget.take(threads):
            with lock:
                in_flight[0] += threads
                peak[0] = max(peak[0], in_flight[0])
            time.sleep(0.05)
            with lock:
                in_flight[0] -= threads

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(run, [2, 1, 2, 1, 3]))
    assert peak[0] == 2 and budget.free == 2


def test_a_failing_chapter_is_reported_with_its_assertion(tmp_path):
    """The runner sees an assertion that fails only under one variant, and names it."""
    chapter = tmp_path / "fragile.md"
    chapter.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n"
        "    format_name: myst\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n\n"
        "```{code-cell} ipython3\nimport os\nprint('threads', os.environ['OMP_NUM_THREADS'])\n"
        "assert os.environ['OMP_NUM_THREADS'] == '1', 'needs one thread'\n```\n"
    )
    one, two = (chapters.run_chapter(chapter, variant) for variant in ("native-1", "native-2"))
    assert one.ok and one.output.strip() == "threads 1", one.error
    assert not two.ok and "needs one thread" in two.summary, two.error


@pytest.mark.book
@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("chapter", TRAINING, ids=lambda path: path.stem)
def test_chapter_holds_under_variant(chapter, variant):
    run = chapters.run_chapter(chapter, variant)
    assert run.ok, (
        f"{chapter.name} fails under {variant} ({chapters.VARIANTS[variant]}), "
        f"although it passes natively: its verdict depends on the machine.\n{run.error[-3000:]}"
    )
