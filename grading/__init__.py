"""The instructor's grading pipeline (nbgrader course and ``python -m grading``)."""

import sys as _sys

# jsonschema (under nbformat and nbgrader) imports rfc3987_syntax, when installed, for its
# IRI format checks, and that builds a parser at import: about 1.1 s for every grader and
# worker process, for checks that no notebook schema asks for.
_sys.modules.setdefault("rfc3987_syntax", None)
