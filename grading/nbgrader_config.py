"""nbgrader configuration: the repository root is the course root.

Run nbgrader's own commands (``nbgrader collect``, ``nbgrader formgrader``, ...) with
``--config grading/nbgrader_config.py`` from the repository root; ``python -m grading``
reads the same layout from :mod:`grading.course`.
"""

import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

c.CourseDirectory.course_id = "cvloss"
c.CourseDirectory.root = _root
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = os.path.join("grading", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("grading", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("grading", "feedback")
# The gradebook: SQLite by default; any SQLAlchemy URL (e.g. PostgreSQL) through one option,
# the environment variable CVLOSS_GRADEBOOK_URL, which `python -m grading --db` also sets.
c.CourseDirectory.db_url = os.environ.get(
    "CVLOSS_GRADEBOOK_URL", "sqlite:///" + os.path.join(_root, "grading", "gradebook.db")
)
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.Execute.timeout = 120
