"""The one per-dtype tolerance table, shared with cvloss_ref.testing."""

from cvloss_ref.testing import TOLERANCES

__all__ = ["TOLERANCES"]
