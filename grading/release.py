"""``release`` and ``check``: generate ``exercises/`` from ``solutions/`` and verify it.

The notebooks of ``solutions/`` are the only source of each assignment; instructors edit
them in JupyterLab.  ``release`` first tidies them in place (outputs, execution counts and
editor metadata removed, see :func:`grading.notebooks.tidy`), so that what is committed
reads well in a diff, then writes the student version of each.

The student version is made with nbgrader's own preprocessors, in the order that
``nbgrader generate_assignment`` applies them (clear solutions, clear hidden tests, lock
cells, compute checksums, clear outputs), without its database: the result is
deterministic, so ``check`` compares every released notebook byte for byte with a fresh
release, and reports a source notebook that is not tidy.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    ClearHiddenTests,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)
from traitlets.config import Config

from .course import RELEASE_DIR, SOURCE_DIR, existing_assignments
from .notebooks import CODE_STUB, convention_errors, load_source, nbgrader_meta, stored_text


def _preprocessors():
    config = Config()
    config.ClearSolutions.code_stub = {"python": CODE_STUB}
    return [
        ClearSolutions(config=config),
        ClearHiddenTests(config=config),
        LockCells(config=config),
        ComputeChecksums(config=config),
        ClearOutput(config=config),
    ]


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The released notebook: solutions replaced by a stub, hidden tests removed."""
    nb = copy.deepcopy(nb)
    resources: dict = {}
    for preprocessor in _preprocessors():
        nb, resources = preprocessor.preprocess(nb, resources)
    return nb


def answered_version(
    nb: nbformat.NotebookNode, replace: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """The released notebook as a student who solved everything would submit it: the
    source's solution cells in place of the stubs, except those of ``replace`` (grade_id
    -> code), which get that code."""
    answers = {
        nbgrader_meta(cell)["grade_id"]: cell.source
        for cell in nb.cells
        if nbgrader_meta(cell).get("solution")
    }
    answers.update(replace or {})
    released = student_version(nb)
    for cell in released.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    return released


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def released_files(assignment: str) -> dict[str, str]:
    """Relative path (under exercises/) -> the text a fresh release writes."""
    files = {}
    for path in sorted((SOURCE_DIR / assignment).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        files[f"{assignment}/{path.name}"] = render(student_version(nb))
    return files


def tidy_sources(assignments: list[str] | None = None) -> list[Path]:
    """Rewrite the source notebooks that are not stored tidy; returns those rewritten."""
    written = []
    for assignment in assignments or existing_assignments():
        for path in sorted((SOURCE_DIR / assignment).glob("*.ipynb")):
            text = path.read_text(encoding="utf-8")
            tidy = stored_text(nbformat.reads(text, as_version=4))
            if tidy != text:
                path.write_text(tidy, encoding="utf-8")
                written.append(path)
    return written


class ConventionError(ValueError):
    """A source notebook breaks the course's conventions: nothing was released."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def source_problems(assignment: str) -> list[str]:
    """How the source notebooks of ``assignment`` break the conventions (empty: none)."""
    problems = []
    for path in sorted((SOURCE_DIR / assignment).glob("*.ipynb")):
        try:
            source = load_source(path, assignment)
            nbformat.validate(source.nb)
        except Exception as error:  # a broken source notebook is a finding, not a crash
            problems.append(f"{assignment}/{path.name}: cannot be read: {error}")
            continue
        problems.extend(convention_errors(source))
    return problems


def release(assignments: list[str] | None = None) -> list[Path]:
    """Tidy the source notebooks, then regenerate their exercises/ folders; returns every
    file written (source notebooks first).  Raises :class:`ConventionError`, and writes
    nothing, when a source notebook breaks the conventions (the grader could not grade
    it as written)."""
    problems = [p for a in assignments or existing_assignments() for p in source_problems(a)]
    if problems:
        raise ConventionError(problems)
    written = tidy_sources(assignments)
    for assignment in assignments or existing_assignments():
        target = RELEASE_DIR / assignment
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for relative, text in released_files(assignment).items():
            path = RELEASE_DIR / relative
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def check() -> list[str]:
    """Problems found: exercises/ out of date, or a source notebook breaking conventions."""
    problems = []
    for assignment in existing_assignments():
        problems.extend(source_problems(assignment))
        for path in sorted((SOURCE_DIR / assignment).glob("*.ipynb")):
            try:
                nb = nbformat.read(str(path), as_version=4)
            except Exception:
                continue  # reported by source_problems
            if stored_text(nb) != path.read_text(encoding="utf-8"):
                problems.append(
                    f"solutions/{assignment}/{path.name} holds outputs or editor metadata: "
                    "run `python -m grading release` (it tidies the sources)"
                )
        expected = released_files(assignment)
        for relative, text in expected.items():
            path = RELEASE_DIR / relative
            if not path.exists():
                problems.append(f"exercises/{relative} is missing: run `python -m grading release`")
            elif path.read_text(encoding="utf-8") != text:
                problems.append(
                    f"exercises/{relative} is out of date: run `python -m grading release`"
                )
        folder = RELEASE_DIR / assignment
        if folder.is_dir():
            for path in sorted(folder.glob("*.ipynb")):
                if f"{assignment}/{path.name}" not in expected:
                    problems.append(f"exercises/{assignment}/{path.name} has no source notebook")
    return problems
