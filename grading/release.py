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

from .course import RELEASE_DIR, ROOT, SOURCE_DIR, existing_assignments
from .notebooks import CODE_STUB, convention_errors, load_source, nbgrader_meta, stored_text

#: The two cells every assignment gets from the course's settings (``_config.yml``), so that
#: no instructor writes them: the first code cell installs the course package where it is
#: missing (Colab), the last cell says how to hand the notebook in.
INSTALL_ID = "install"
HAND_IN_ID = "handing_in"


def _course_links():
    """``book/_ext/course_links.py``: the addresses of the book, the repository and the
    launchers, shared with the book's Sphinx extension (loaded by path: it is not a
    package, and the student branch has no ``grading/``)."""
    import importlib.util
    import sys

    name = "course_links"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "book" / "_ext" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def install_source(package: str) -> str:
    """The install cell: stdlib only, so that it runs before anything is installed."""
    return f"""\
# Makes the course package importable where it is missing, and does nothing where it is
# present (`make lab`, Binder, the course's JupyterHub). Inside a checkout of the course it
# uses that checkout (offline); elsewhere (Google Colab) it installs the student branch.
import importlib.util
import pathlib
import subprocess
import sys

PACKAGE = "{package}"
if importlib.util.find_spec("cvloss_ref") is None:
    _here = pathlib.Path.cwd().resolve()
    _roots = [p for p in [_here, *_here.parents] if (p / "pyproject.toml").is_file()]
    _checkout = next((p for p in _roots if (p / "cvloss_ref").is_dir()), None)
    if _checkout is not None:
        sys.path.insert(0, str(_checkout))
    else:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PACKAGE], check=True)
        importlib.invalidate_caches()"""


def hand_in_source(assignment: str, notebook: str) -> str:
    """The last cell: how to hand the notebook in, for the three set-ups the course supports
    (nbgrader's exchange on JupyterHub, an LMS upload read by ``python -m grading collect``,
    a shared folder read by the same command)."""
    stem = notebook.removesuffix(".ipynb")
    return f"""\
## Handing in

1. **Save**, then press **Validate** in the notebook's toolbar (JupyterLab with the course's
   extensions: `make lab`, Binder, JupyterHub). Elsewhere (Colab) run *Restart and run all*.
   Every visible test must pass in a fresh kernel, from the first cell to the last.
2. Keep the file name **`{notebook}`**: the grader looks for it. A download renamed
   `{stem} (1).ipynb` or `{stem}-1.ipynb` is recognised too.
   Do not delete, reorder or edit the read-only cells.
3. Hand it in the way your course says:
   - **JupyterHub with nbgrader**: *Nbgrader → Assignment List*, then **Submit** beside
     `{assignment}`.
   - **Moodle or Canvas**: download the notebook (*File → Download*; on Colab *File →
     Download → Download .ipynb*) and upload `{notebook}` to the assignment.
   - **A shared folder**: copy it into a folder named by your student id, inside the
     folder your instructor names: `<shared folder>/<your student id>/{notebook}`."""


def _nbgrader_cell(cell_type: str, grade_id: str, source: str) -> nbformat.NotebookNode:
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.id = grade_id  # deterministic, as nbgrader's own cells in solutions/
    cell.metadata["nbgrader"] = {
        "grade": False,
        "grade_id": grade_id,
        "locked": True,
        "schema_version": 3,
        "solution": False,
        "task": False,
    }
    return cell


def course_cells(
    nb: nbformat.NotebookNode, assignment: str, notebook: str, links=None
) -> nbformat.NotebookNode:
    """``nb`` (a source notebook) with what the course's settings decide written in: links
    to chapters point at the published book, the install cell is the first code cell and
    the hand-in cell the last cell.  Idempotent; ``release`` applies it to the sources."""
    links = links or _course_links()
    settings = links.Settings.load(ROOT)
    chapters = links.book_chapters(ROOT)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = links.localise_chapter_links(cell.source, settings, chapters)
    nb.cells = [
        c for c in nb.cells if nbgrader_meta(c).get("grade_id") not in (INSTALL_ID, HAND_IN_ID)
    ]
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    install = _nbgrader_cell("code", INSTALL_ID, install_source(links.package_url(settings)))
    nb.cells.insert(first_code, install)
    nb.cells.append(_nbgrader_cell("markdown", HAND_IN_ID, hand_in_source(assignment, notebook)))
    return nb


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
            nb = course_cells(nbformat.reads(text, as_version=4), assignment, path.name)
            tidy = stored_text(nb)
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
            if stored_text(course_cells(nb, assignment, path.name)) != path.read_text(
                encoding="utf-8"
            ):
                problems.append(
                    f"solutions/{assignment}/{path.name} holds outputs or editor metadata, or "
                    "its links, install cell or hand-in cell do not follow _config.yml: run "
                    "`python -m grading release` (it tidies the sources)"
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
