"""Reading the instructor notebooks: cells, tests and what each test checks.

A test cell calls ``assert_loss_matches(<function>, "<reference>", forbid=[...],
cases=[...], seed=..., **params)`` once or more.  The grader parses these calls (from
the *source* notebook, which is trusted) to know which student function each test cell
checks and with which parameters, so that it can repeat the check outside the
student's kernel.  ``forbid`` is a list in the call; ``cases`` and the parameters are
literals, written in the call or assigned to a name earlier in the same cell
(``cases = ["empty batch", ...]`` then ``assert_loss_matches(..., cases=cases)``).

A function that is not a loss of the catalogue (an NMS, a weight map, an experiment) is
checked by ``cvloss_ref.testing.assert_outputs_match(<function>, "<name>", cases,
forbid=[...], ...)``, which compares outputs on the cases given (built by
``cvloss_ref.exercises``).  The grader repeats such a test cell by executing it, in its
own trusted process, with the student's functions replaced by calls into the sandbox
(see ``autograde.run_test_cell``).

The notebooks of ``solutions/`` are the only source of each assignment: instructors edit
them in JupyterLab (nbgrader's Create Assignment toolbar), and :func:`tidy` keeps them
stored without outputs or editor state, so that a diff shows what changed.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course import SOURCE_DIR

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_GRADE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
_MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes: not Python
#: The calls a test cell may check with: a catalogue loss, or outputs on given cases.
LOSS_CHECK = "assert_loss_matches"
OUTPUT_CHECK = "assert_outputs_match"


@dataclass(frozen=True)
class Check:
    """One ``assert_loss_matches`` (or ``assert_outputs_match``) call of a test cell."""

    function: str
    reference: str
    forbid: tuple[str, ...] = ()  # dotted names, e.g. "F.cross_entropy"
    cases: tuple[str, ...] | None = None
    hidden: bool = False
    params: tuple[tuple[str, object], ...] = ()
    kind: str = "loss"  # "outputs" for assert_outputs_match (verified by re-running the cell)


@dataclass
class TestCell:
    grade_id: str
    points: float
    description: str
    checks: list[Check]
    hidden: bool

    @property
    def functions(self) -> list[str]:
        return sorted({c.function for c in self.checks})

    @property
    def reruns(self) -> bool:
        """Whether the grader verifies this cell by re-running it (``assert_outputs_match``)."""
        return any(check.kind == "outputs" for check in self.checks)


@dataclass
class SourceNotebook:
    """An instructor notebook: its cells, solution cells and test cells."""

    assignment: str
    name: str  # file name without .ipynb
    path: Path
    nb: nbformat.NotebookNode
    solution_ids: list[str] = field(default_factory=list)
    tests: list[TestCell] = field(default_factory=list)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)


def nbgrader_meta(cell) -> dict:
    return dict(cell.get("metadata", {}).get("nbgrader", {}) or {})


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _hidden_lines(source: str) -> set[int]:
    """1-based line numbers inside a hidden-tests region."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), 1):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif inside:
            lines.add(number)
    return lines


def _literals(tree: ast.Module) -> dict[str, list[tuple[int, ast.expr]]]:
    """Top-level ``name = <expression>`` assignments of a cell: name -> (line, value)."""
    found: dict[str, list[tuple[int, ast.expr]]] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            found.setdefault(node.targets[0].id, []).append((node.lineno, node.value))
    return found


def _literal(value: ast.expr, assigned: dict, line: int, what: str):
    """The literal ``value``, or the literal last assigned to the name ``value`` before
    ``line`` in the same cell."""
    if isinstance(value, ast.Name):
        earlier = [v for at, v in assigned.get(value.id, []) if at < line]
        if not earlier:
            raise ValueError(f"{what}={value.id}: assign {value.id} a literal above the call")
        value = earlier[-1]
    try:
        return ast.literal_eval(value)
    except ValueError:
        raise ValueError(f"{what} must be a literal (case names, a number, ...)") from None


def parse_checks(source: str) -> list[Check]:
    """The ``assert_loss_matches`` and ``assert_outputs_match`` calls of a test cell's
    source (ValueError if malformed)."""
    tree = ast.parse(source)
    hidden_lines = _hidden_lines(source)
    assigned = _literals(tree)
    checks = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _dotted(node.func) not in (LOSS_CHECK, OUTPUT_CHECK):
            continue
        kind = "loss" if _dotted(node.func) == LOSS_CHECK else "outputs"
        if kind == "outputs":
            if len(node.args) < 2 or not isinstance(node.args[0], ast.Name):
                raise ValueError(f"{OUTPUT_CHECK} must be called as (function, 'name', cases, ...)")
        elif len(node.args) != 2 or not isinstance(node.args[0], ast.Name):
            raise ValueError("assert_loss_matches must be called as (function, 'name', ...)")
        reference = node.args[1]
        if not (isinstance(reference, ast.Constant) and isinstance(reference.value, str)):
            raise ValueError("the reference name must be a string literal")
        forbid: tuple[str, ...] = ()
        cases = None
        params = []
        for keyword in node.keywords:
            if keyword.arg is None:
                raise ValueError("assert_loss_matches(**kwargs) cannot be parsed")
            if keyword.arg == "forbid":
                if not isinstance(keyword.value, (ast.List, ast.Tuple)):
                    raise ValueError("forbid must be a list literal")
                names = [_dotted(element) for element in keyword.value.elts]
                if None in names:
                    raise ValueError("forbid must list names such as F.cross_entropy")
                forbid = tuple(names)  # type: ignore[arg-type]
            elif keyword.arg == "cases" and kind == "loss":
                cases = tuple(_literal(keyword.value, assigned, node.lineno, "cases"))
            elif keyword.arg == "seed" or kind == "outputs":
                continue  # the grader draws its own seeds; outputs checks are re-run whole
            else:
                value = _literal(keyword.value, assigned, node.lineno, keyword.arg)
                params.append((keyword.arg, value))
        checks.append(
            Check(
                function=node.args[0].id,
                reference=reference.value,
                forbid=forbid,
                cases=cases,
                hidden=node.lineno in hidden_lines,
                params=tuple(params),
                kind=kind,
            )
        )
    return checks


def _docstring(source: str) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    doc = ast.get_docstring(tree) if tree.body else None
    return (doc or "").strip().splitlines()[0] if doc else ""


def _defined_functions(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]


def load_source(path: Path, assignment: str | None = None) -> SourceNotebook:
    nb = nbformat.read(str(path), as_version=4)
    source = SourceNotebook(
        assignment=assignment or path.parent.name, name=path.stem, path=path, nb=nb
    )
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        if meta.get("solution") and cell.cell_type == "code":
            source.solution_ids.append(meta["grade_id"])
        if meta.get("grade") and cell.cell_type == "code":
            checks = parse_checks(cell.source)
            source.tests.append(
                TestCell(
                    grade_id=meta["grade_id"],
                    points=float(meta.get("points", 0)),
                    description=_docstring(cell.source),
                    checks=checks,
                    hidden=BEGIN_HIDDEN in cell.source,
                )
            )
    return source


def source_notebooks(assignment: str) -> list[SourceNotebook]:
    folder = SOURCE_DIR / assignment
    if not folder.is_dir():
        raise FileNotFoundError(f"no assignment {assignment!r}: {folder} does not exist")
    return [load_source(path, assignment) for path in sorted(folder.glob("*.ipynb"))]


def support_code(source: SourceNotebook) -> str:
    """The instructor's locked code cells that solutions may rely on (imports, helpers).

    Cells that mention ``cvloss_ref`` (the harness) and test cells are left out: the
    verification process runs without the reference package.
    """
    parts = []
    for cell in source.nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
            continue
        if "cvloss_ref" in cell.source:
            continue
        parts.append(cell.source)
    return "\n\n".join(parts)


def prelude_code(source: SourceNotebook) -> list[str]:
    """Every locked code cell that is neither a solution nor a test (imports, harness,
    helpers), in order: the trusted context in which a test cell is re-run."""
    return [
        cell.source
        for cell in source.nb.cells
        if cell.cell_type == "code"
        and not nbgrader_meta(cell).get("solution")
        and not nbgrader_meta(cell).get("grade")
    ]


#: Cell metadata that records an editing session (collapsed outputs, timings), not the
#: assignment: :func:`tidy` drops it.
SESSION_METADATA = ("collapsed", "scrolled", "execution", "ExecuteTime", "trusted")


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as ``solutions/`` stores it: without outputs, execution counts or the
    session metadata that JupyterLab records, and with ``language_info`` reduced to the
    language's name (the rest names the Python version of whoever saved it last)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in SESSION_METADATA:
            cell.metadata.pop(key, None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    info = nb.metadata.get("language_info")
    if isinstance(info, dict) and "name" in info:
        nb.metadata["language_info"] = {"name": info["name"]}
    nb.metadata.pop("widgets", None)
    return nb


def stored_text(nb: nbformat.NotebookNode) -> str:
    """The text of a tidy source notebook: nbformat's JSON layout (one-space indent, sorted
    keys, each line of a cell a string of its own), as JupyterLab saves it."""
    return nbformat.writes(tidy(nb)) + "\n"


def _private_imports(code: str) -> list[str]:
    """``cvloss_ref`` names starting with ``_`` that ``code`` imports."""
    try:
        tree = ast.parse(
            "\n".join("" if _MAGIC.match(line) else line for line in code.splitlines())
        )
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cvloss_ref":
            modules = [node.module or ""]
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names if alias.name.startswith("cvloss_ref")]
            names = []
        else:
            continue
        for name in [*(part for m in modules for part in m.split(".")), *names]:
            if name.startswith("_"):
                found.append(name)
    return found


def convention_errors(source: SourceNotebook) -> list[str]:
    """Ways in which a source notebook breaks the course's conventions."""
    errors = []
    where = f"{source.assignment}/{source.name}.ipynb"
    seen: set[str] = set()
    if not any("](" in c.source for c in source.nb.cells if c.cell_type == "markdown"):
        errors.append(f"{where}: no link to the book chapter")
    for cell in source.nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and not meta:
            errors.append(f"{where}: a code cell without nbgrader metadata")
            continue
        if not meta:
            continue
        grade_id = meta.get("grade_id", "")
        if cell.cell_type == "code" and not meta.get("solution"):
            for name in _private_imports(cell.source):
                errors.append(
                    f"{where}: {grade_id}: imports {name}, a private name of cvloss_ref "
                    "(use its public API: cvloss_ref.testing, cvloss_ref.exercises)"
                )
        if not _GRADE_ID.match(grade_id or ""):
            errors.append(f"{where}: invalid grade_id {grade_id!r}")
        if grade_id in seen:
            errors.append(f"{where}: duplicate grade_id {grade_id!r}")
        seen.add(grade_id)
        if meta.get("schema_version") != 3:
            errors.append(f"{where}: {grade_id}: nbgrader schema_version must be 3")
        if meta.get("solution"):
            if BEGIN_SOLUTION not in cell.source or END_SOLUTION not in cell.source:
                errors.append(
                    f"{where}: solution cell {grade_id}: put the answer between "
                    f"{BEGIN_SOLUTION} and {END_SOLUTION} (release replaces it by a stub)"
                )
            defined = _defined_functions(cell.source)
            if grade_id not in defined:
                names = ", ".join(defined) or "none"
                errors.append(
                    f"{where}: solution cell {grade_id}: its ID (grade_id) must be the name of "
                    f"the function it defines (defined here: {names}); set the ID in the "
                    "Create Assignment toolbar"
                )
        if meta.get("grade"):
            if not meta.get("locked"):
                errors.append(f"{where}: test cell {grade_id}: test cells must be read-only")
            if not grade_id.startswith("test_"):
                errors.append(
                    f"{where}: test cell {grade_id}: its ID must read test_<function>_<what> "
                    "(e.g. test_hinge_loss_hidden), the function being the one it checks"
                )
            if not _docstring(cell.source):
                errors.append(
                    f"{where}: test cell {grade_id}: open it with a one-line docstring that "
                    'says what it checks (e.g. """Check hinge_loss on random scores"""): '
                    "students read it in their feedback"
                )
            try:
                checks = parse_checks(cell.source)
            except (SyntaxError, ValueError) as error:
                errors.append(f"{where}: test cell {grade_id}: {error}")
                continue
            if not checks:
                errors.append(
                    f"{where}: test cell {grade_id}: no {LOSS_CHECK} or {OUTPUT_CHECK} call "
                    "(the grader repeats those calls outside the student's kernel)"
                )
            for check in checks:
                if grade_id.startswith("test_") and not grade_id.startswith(
                    f"test_{check.function}_"
                ):
                    errors.append(
                        f"{where}: test cell {grade_id}: it checks {check.function}, so its ID "
                        f"must start with test_{check.function}_"
                    )
    solution_ids = set(source.solution_ids)
    for test in source.tests:
        for function in test.functions:
            if function not in solution_ids:
                errors.append(f"{where}: {test.grade_id}: no solution cell for {function}")
    for function in source.solution_ids:
        tests = [t for t in source.tests if function in t.functions]
        if not any(t.hidden for t in tests) or not any(not t.hidden for t in tests):
            errors.append(f"{where}: {function}: needs visible and hidden tests")
    return errors
