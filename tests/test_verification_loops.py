"""An endless loop costs the verification one time limit, wherever it is.

The verification process (``grading/remote.py``) is run here without bubblewrap
(``unsafe``: only the time limits are under test), with a 2-second limit: a function
whose body loops forever is called once and then refused at once (before, each check of
it, and each restart of the process for it, met the loop again); a solution cell that
loops at its top level costs one limit plus a small allowance, not the process start-up
allowance of two minutes.
"""

from __future__ import annotations

import time

import pytest
import torch

from grading import remote
from grading.remote import RemoteError, RemoteFunction, Verifier

LIMIT = 2.0

SUPPORT = "import torch\n"
LOOPS_IN_BODY = "def spin(x):\n    while True:\n        pass\n"
LOOPS_AT_TOP = "while True:\n    pass\n\ndef never(x):\n    return x\n"
HONEST = "def double(x):\n    return 2 * x\n"


def _verifier(tmp_path, *chunks) -> Verifier:
    return Verifier(tmp_path, [("support", SUPPORT), *chunks], unsafe=True, timeout=LIMIT)


@pytest.mark.slow
def test_a_function_that_loops_is_called_once_then_refused_at_once(tmp_path):
    verifier = _verifier(tmp_path, ("spin", LOOPS_IN_BODY), ("double", HONEST))
    verifier.start()
    try:
        spin = RemoteFunction(verifier, "spin")
        x = torch.ones(3)
        started = time.monotonic()
        with pytest.raises(RemoteError, match=f"ran longer than {LIMIT:g} s"):
            spin(x)
        first = time.monotonic() - started
        assert LIMIT <= first < LIMIT + 10
        verifier.start()  # as the grader does for the next function's checks
        for _ in range(5):  # later checks of spin: no process killed, no limit waited for
            started = time.monotonic()
            with pytest.raises(RemoteError, match="is not called again"):
                spin(x)
            assert time.monotonic() - started < 0.5
        assert verifier.alive()
        assert torch.equal(RemoteFunction(verifier, "double")(x), 2 * x)
    finally:
        verifier.close()


@pytest.mark.slow
def test_a_cell_that_loops_at_its_top_level_costs_one_limit_and_its_own_function(tmp_path):
    verifier = _verifier(tmp_path, ("never", LOOPS_AT_TOP), ("double", HONEST))
    started = time.monotonic()
    verifier.start()
    try:
        spent = time.monotonic() - started
        # start-up (unbounded here: a busy machine) + one limit + the cell's allowance,
        # never the start-up allowance again
        assert spent < remote.LOAD_GRACE_S
        assert "never" in verifier.load_errors
        assert "ran longer than" in verifier.load_errors["never"]
        x = torch.ones(2)
        assert torch.equal(RemoteFunction(verifier, "double")(x), 2 * x)
        verifier.close()
        restarted = time.monotonic()
        verifier.start()  # the looping cell is left out: no limit waited for
        assert time.monotonic() - restarted < 60
        assert torch.equal(RemoteFunction(verifier, "double")(x), 2 * x)
    finally:
        verifier.close()
