"""What the test machine has: CI must have every system program that `.ci/run` installs."""

from __future__ import annotations

import os

import pytest

#: True under CI (`CI=true`), where a missing system program is a failure, not a skip.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_unless_ci(reason: str) -> None:
    """Skip for a missing system program, except in CI, where `.ci/run` installs it: there
    the test fails instead, so that a broken install cannot hide behind a skip."""
    if IN_CI:
        pytest.fail(f"{reason}, but CI must have it (see .ci/run)")
    pytest.skip(reason)


NO_BWRAP = "bubblewrap is not installed or cannot run here"
