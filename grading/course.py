"""Where the course lives: the repository root is the nbgrader course root.

This module is the one definition of the layout: ``python -m grading`` imports it, and
nbgrader's own commands read it through ``nbgrader_config.py`` (at the root, which loads
``grading/nbgrader_config.py``), so that ``CVLOSS_GRADING_DIR`` and ``CVLOSS_GRADEBOOK_URL``
move both.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (the nbgrader course directory).
ROOT = Path(__file__).resolve().parents[1]
GRADING_DIR = ROOT / "grading"
SOURCE_DIR = ROOT / "solutions"
RELEASE_DIR = ROOT / "exercises"
#: Where submissions, results, feedback and the gradebook go (tests point it elsewhere).
WORK_DIR = Path(os.path.abspath(os.environ.get("CVLOSS_GRADING_DIR", GRADING_DIR)))
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


def _course_path(path: Path) -> str:
    """``path`` as nbgrader's CourseDirectory takes it: relative to the course root when it
    lies inside it, absolute otherwise (nbgrader joins it to the root either way)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def nbgrader_layout() -> dict[str, str]:
    """The course layout as nbgrader's ``CourseDirectory`` settings (name -> value)."""
    return {
        "course_id": COURSE_ID,
        "root": str(ROOT),
        "source_directory": _course_path(SOURCE_DIR),
        "release_directory": _course_path(RELEASE_DIR),
        "submitted_directory": _course_path(SUBMITTED_DIR),
        "autograded_directory": _course_path(AUTOGRADED_DIR),
        "feedback_directory": _course_path(FEEDBACK_DIR),
        "db_url": default_db_url(),
    }
