"""The instructor's grading pipeline (nbgrader course and ``python -m grading``)."""
