"""What grading a submission produced: typed, and stored as JSON.

``autograde`` builds a :class:`SubmissionResult` per submission (in a worker process, which
returns it to the parent); the parent writes it to ``autograded/<student>/<assignment>/
results.json`` and to the gradebook; ``feedback``, ``export`` and ``report`` read it back
with :meth:`SubmissionResult.load`.  One definition of the fields serves all of them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: The status of a test cell in a result.
PASSED = "passed"
FAILED = "failed"
NOT_RUN = "not run"  # the notebook run ended before the cell
NOT_GRADED = "not graded"  # the notebook could not be read at all
#: How every flag about output that the grader cut begins (printing a lot costs no points;
#: the feedback page tells the student, the formgrader shows the flag).
OUTPUT_TRUNCATED = "output truncated"


@dataclass
class CellResult:
    """One test cell of one submission."""

    grade_id: str
    description: str
    hidden: bool
    points: float
    max_points: float
    status: str  # PASSED, FAILED, NOT_RUN or NOT_GRADED
    message: str = ""  # what the student reads when the cell did not pass
    notebook: str | None = None  # the cell's status in the notebook run ("ok", "error", ...)
    verified: bool | None = None  # the trusted verification's verdict

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@dataclass
class NotebookResult:
    """One notebook of a submission: its test cells, or why it was not graded."""

    max_score: float
    score: float = 0.0
    cells: list[CellResult] = field(default_factory=list)
    reason: str = ""  # set when the notebook was not graded (missing, unreadable, ...)
    #: The notebook run's outputs that are safe to show, by cell index, for the notebook
    #: that nbgrader's formgrader shows (grading.formgrader); not stored in results.json.
    outputs: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict) -> NotebookResult:
        cells = [CellResult(**cell) for cell in data.get("cells", [])]
        return cls(
            max_score=data["max_score"],
            score=data.get("score", 0.0),
            cells=cells,
            reason=data.get("reason", ""),
        )


@dataclass
class SubmissionResult:
    """Everything grading one student's submission of one assignment produced."""

    student: str
    assignment: str
    max_score: float
    score: float = 0.0
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # for the instructor: what looked wrong
    reason: str = ""  # why (part of) the submission was not graded
    seconds: float = 0.0

    def add(self, name: str, notebook: NotebookResult) -> None:
        self.notebooks[name] = notebook
        self.score += notebook.score

    @property
    def notes(self) -> list[str]:
        """The reason it was not graded, if any, then the flags."""
        return ([self.reason] if self.reason else []) + list(self.flags)

    def to_dict(self) -> dict:
        data = asdict(self)
        for notebook in data["notebooks"].values():
            del notebook["outputs"]  # shown in autograded/'s notebook, not kept twice
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        notebooks = {
            name: NotebookResult.from_dict(nb) for name, nb in data.get("notebooks", {}).items()
        }
        return cls(
            student=data["student"],
            assignment=data["assignment"],
            max_score=data["max_score"],
            score=data.get("score", 0.0),
            notebooks=notebooks,
            flags=list(data.get("flags", [])),
            reason=data.get("reason", ""),
            seconds=data.get("seconds", 0.0),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SubmissionResult:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: Path) -> SubmissionResult:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
