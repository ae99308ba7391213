"""Where the course lives: the repository root is the nbgrader course root."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the nbgrader course directory).
ROOT = Path(__file__).resolve().parents[1]
GRADING_DIR = ROOT / "grading"
SOURCE_DIR = ROOT / "solutions"
RELEASE_DIR = ROOT / "exercises"
#: Where submissions, results, feedback and the gradebook go (tests point it elsewhere).
WORK_DIR = Path(os.environ.get("CVLOSS_GRADING_DIR", str(GRADING_DIR)))
SUBMITTED_DIR = WORK_DIR / "submitted"
AUTOGRADED_DIR = WORK_DIR / "autograded"
FEEDBACK_DIR = WORK_DIR / "feedback"
DEMO_DIR = GRADING_DIR / "demo"

#: One assignment per part of the book, in book order.
ASSIGNMENTS = (
    "a01_information",
    "a02_classification",
    "a03_regression",
    "a04_boxes",
    "a05_dense",
    "a06_synthesis",
    "a07_adversarial",
    "a08_metric",
)

COURSE_ID = "cvloss"


def default_db_url() -> str:
    """The gradebook: SQLite in grading/ unless ``CVLOSS_GRADEBOOK_URL`` names another
    SQLAlchemy URL (``postgresql://user@host/course``)."""
    return os.environ.get("CVLOSS_GRADEBOOK_URL", f"sqlite:///{WORK_DIR / 'gradebook.db'}")


def existing_assignments() -> list[str]:
    """Assignments that have a source folder, in book order."""
    return [a for a in ASSIGNMENTS if (SOURCE_DIR / a).is_dir()]
