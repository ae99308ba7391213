"""nbgrader's settings for this course, from the layout that :mod:`grading.course` defines.

nbgrader reads ``nbgrader_config.py`` at the repository root (the course root), which loads
this file; run nbgrader's own commands (``nbgrader generate_assignment``, ``nbgrader
autograde``, ..., and ``jupyter server`` for the formgrader) from the repository root
(``nbgrader`` also from elsewhere, with ``--course-dir PATH``).  ``CVLOSS_GRADING_DIR``
(submissions, results, feedback, gradebook) and ``CVLOSS_GRADEBOOK_URL`` (the gradebook) move
``python -m grading`` and nbgrader alike.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [_ROOT]:
    sys.path.insert(0, _ROOT)  # the course's own `grading` package, wherever nbgrader runs

from grading.course import ROOT, WORK_DIR, nbgrader_layout  # noqa: E402
from grading.notebooks import CODE_STUB  # noqa: E402

if str(ROOT) != _ROOT:
    raise ImportError(f"nbgrader_config.py of {_ROOT} imported the grading package of {ROOT}")

WORK_DIR.mkdir(parents=True, exist_ok=True)  # where nbgrader creates the SQLite gradebook

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

for _name, _value in nbgrader_layout().items():
    setattr(c.CourseDirectory, _name, _value)
c.ClearSolutions.code_stub = {"python": CODE_STUB}
c.Execute.timeout = 120
