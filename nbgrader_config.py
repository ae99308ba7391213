"""nbgrader's configuration for this course: the repository root is the course root.

nbgrader reads this file from the current directory (and from ``--course-dir``); the
settings themselves are in ``grading/nbgrader_config.py``, made from the one definition of
the course layout, ``grading/course.py``.
"""

import os

load_subconfig(os.path.join("grading", "nbgrader_config.py"))  # noqa: F821  (traitlets)
