"""``python -m grading autograde`` forks its local workers from a server that has imported
what they need (``grading.cli.start_fork_server``), started before the command's own
imports; the API call keeps spawning fresh workers (``LocalEngine``'s default)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Whose child a worker of the pool is: this script's (spawned), or the fork server's, whose
# command line names the modules it preloads.
_PROBE = textwrap.dedent(
    """
    import os
    import sys

    import grading.cli

    assert "torch" not in sys.modules, "the CLI module must stay light"
    method = sys.argv[1]
    if method == "forkserver":
        assert grading.cli.start_fork_server()
    from grading.autograde import LocalEngine

    engine = LocalEngine(1, method)
    parent = engine.pool.submit(os.getppid).result()
    with open(f"/proc/{parent}/cmdline", encoding="utf-8") as cmdline:
        words = cmdline.read()
    server = "multiprocessing.forkserver import main" in words and "grading.autograde" in words
    print("this process" if parent == os.getpid() else "fork server" if server else words)
    engine.close()
    """
)


def _probe(method: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, method],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_fork_server_workers_start_with_the_worker_modules_imported():
    assert _probe("forkserver") == "fork server"


def test_spawned_workers_start_fresh():
    assert _probe("spawn") == "this process"
