"""``autograde``: grade every submission of an assignment, N at a time, in sandboxes.

For each submission a worker process (trusted code only) does two independent things:

1. **The notebook run**: it builds the graded notebook from the instructor's source
   (test cells, hidden tests included, always come from the source, so edited or
   deleted test cells change nothing) with the student's solution cells put in, and
   executes it in a sandbox (``_nbrunner.py``), which reports each test cell's status.
2. **The trusted verification**: it loads the student's solution cells into a fresh
   sandboxed process that cannot import ``cvloss_ref`` (``_verifier.py``) and runs
   ``cvloss_ref.testing.check_loss`` *in the worker* on a :class:`RemoteFunction`, with
   a seed drawn now, so that inputs are new, and outputs and gradients are compared
   with the reference outside the student's reach.

A test cell earns its points only if both agree that it passes; any disagreement is
flagged for the instructor.  The worker returns a plain dict; only the parent process
writes files and the gradebook, one transaction per submission.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ._verifier import LAZY_DYNAMO_FILE
from .course import AUTOGRADED_DIR, SUBMITTED_DIR
from .formgrader import outputs_of, placeholder_notebook, review_notebook, write_notebook
from .notebooks import (
    CODE_STUB,
    SourceNotebook,
    TestCell,
    nbgrader_meta,
    prelude_code,
    source_notebooks,
    support_code,
)
from .release import answered_version, student_version
from .remote import RemoteError, RemoteFunction, Verifier
from .results import (
    FAILED,
    NOT_GRADED,
    NOT_RUN,
    OUTPUT_TRUNCATED,
    PASSED,
    CellResult,
    NotebookResult,
    SubmissionResult,
)
from .sandbox import Limits, Sandbox, batch_tag, current_batch_tag

MAX_NOTEBOOK_BYTES = 20 * 1024**2  # a larger submitted notebook is not read
MAX_MESSAGE_CHARS = 4000  # of a notebook run's error shown to the student
#: Seeds are drawn below this, leaving room under 2**31 for SEED_STRIDE * (test cells).
MAX_SEED = 2**31 - 10**6
#: The label of the instructor's support code among the chunks the verifier loads.
SUPPORT_CODE = "(the notebook's own code)"
TABLE_FLAGS_WIDTH = 90  # characters of flags shown per row of `table`
TRUNCATED_CELLS_SHOWN = 5  # cells named in the flag about a notebook run's cut output
_HERE = Path(__file__).resolve().parent


#: The notebook run may take this many cell time limits, plus a start-up allowance, in all.
NOTEBOOK_CELLS_BUDGET = 20
NOTEBOOK_STARTUP_S = 60


@dataclass(frozen=True)
class Options:
    """How a batch is graded (the same for the canary and every submission)."""

    timeout: float = 60.0  # seconds per cell and per function call
    unsafe: bool = False
    limits: Limits = field(default_factory=Limits)

    @property
    def notebook_wall(self) -> float:
        """Seconds the whole notebook run may take before it is stopped."""
        return NOTEBOOK_CELLS_BUDGET * self.timeout + NOTEBOOK_STARTUP_S


# ----------------------------------------------------------------------------- reading


def _read_submission(path: Path) -> tuple[nbformat.NotebookNode | None, str | None]:
    if not path.exists():
        return None, f"{path.name} is missing from the submission"
    if path.is_symlink() or not path.is_file():
        return None, f"{path.name} is not a regular file"
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, f"{path.name} is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MiB"
    try:
        text = path.read_bytes().decode("utf-8")
        nb = nbformat.reads(text, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cells")
        for cell in nb.cells:
            if not isinstance(cell.get("source", ""), str) or "cell_type" not in cell:
                raise ValueError("malformed cell")
    except Exception as error:
        return None, f"{path.name} is not a valid notebook ({type(error).__name__})"
    return nb, None


def _solutions(nb, source: SourceNotebook) -> tuple[dict[str, str], list[str]]:
    """The student's solution cells by grade_id, and flags about the test cells."""
    flags = []
    found: dict[str, str] = {}
    released = {
        nbgrader_meta(c).get("grade_id"): c.source
        for c in student_version(source.nb).cells
        if nbgrader_meta(c).get("grade")
    }
    seen_tests = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        grade_id = meta.get("grade_id")
        if cell.get("cell_type") == "code" and grade_id in source.solution_ids:
            if grade_id in found:
                flags.append(f"duplicate solution cell {grade_id}")
                continue
            found[grade_id] = cell.source
        if grade_id in released:
            seen_tests[grade_id] = cell.source
    edited = [g for g, s in released.items() if g in seen_tests and seen_tests[g] != s]
    missing = [g for g in released if g not in seen_tests]
    if edited:
        flags.append("test cells edited: " + ", ".join(edited))
    if missing:
        flags.append("test cells deleted: " + ", ".join(missing))
    return found, flags


def _static_flags(solutions: dict[str, str]) -> list[str]:
    flags = []
    for grade_id, code in solutions.items():
        try:
            tree = ast.parse(
                "\n".join("" if line.lstrip()[:1] in "%!" else line for line in code.splitlines())
            )
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] == "cvloss_ref" for n in names):
                flags.append(f"{grade_id} imports cvloss_ref")
                break
    return flags


def graded_notebook(source: SourceNotebook, solutions: dict[str, str]) -> nbformat.NotebookNode:
    """The instructor's notebook with the student's solution cells in place of the answers."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(source.nb)))
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = solutions.get(meta["grade_id"], CODE_STUB)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


# ----------------------------------------------------------------------------- running


def _run_notebook(source, solutions, private: Path, options: Options, seed: int) -> dict:
    """Execute the graded notebook in a sandbox (``_nbrunner.py``); returns what the run
    reported (``cells``: each test cell's status, ``restarts``, ...), whether it was
    ``killed``, ``log_dropped`` (bytes of its log beyond ``Limits.log_bytes``), and
    ``outputs``: the executed notebook's outputs that are safe to show in
    the formgrader, by cell index (:func:`grading.formgrader.outputs_of`)."""
    nb = graded_notebook(source, solutions)
    nbformat.write(nb, str(private / "graded.ipynb"))
    tests = {t.grade_id: (t.functions[0] if t.functions else "") for t in source.tests}
    (private / "job.json").write_text(json.dumps({"timeout": options.timeout, "tests": tests}))
    for script in ("_nbrunner.py", LAZY_DYNAMO_FILE):
        shutil.copy(_HERE / script, private / script)
    import sys

    import cvloss_ref

    package = str(Path(cvloss_ref.__file__).resolve().parent)
    sandbox = Sandbox(
        [sys.executable, "_nbrunner.py"],
        private,
        unsafe=options.unsafe,
        expose=[package],
        limits=options.limits,
        stderr_path=private / "runner.log",
        env={"CVLOSS_HIDDEN_SEED": str(seed)},
    )
    sandbox.start()
    code = sandbox.wait(options.notebook_wall)
    result = {"cells": {}, "finished": False}
    try:
        text = (private / "result.json").read_text(encoding="utf-8")[:5_000_000]
        loaded = json.loads(text)
        if isinstance(loaded, dict) and isinstance(loaded.get("cells"), dict):
            result = loaded
    except (OSError, ValueError):
        pass
    result["outputs"] = _executed_outputs(private / "executed.ipynb", nb)
    result["log_dropped"] = sandbox.log_dropped
    result["killed"] = code is None
    result["exit_code"] = code
    return result


def _executed_outputs(path: Path, graded: nbformat.NotebookNode) -> dict[str, list[dict]]:
    """The safe outputs of the notebook the sandbox wrote to ``path`` (none if it wrote no
    readable notebook)."""
    try:
        if path.is_symlink() or path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return {}
        executed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return outputs_of(executed, graded)


def run_test_cell(
    source: SourceNotebook, test: TestCell, functions: dict, seed: int
) -> tuple[bool, str]:
    """Re-run one test cell of the trusted source notebook in this process.

    For the cells that check with ``assert_outputs_match`` (functions that are not losses of
    the catalogue): the notebook's locked cells (imports, harness, helpers) run first, then
    ``HIDDEN_SEED`` is set to ``seed`` and the student's function names are bound to
    ``functions`` (:class:`RemoteFunction` objects in the grader), and the cell runs.  Every
    line executed here is the instructor's; inputs are drawn and outputs compared here.
    """
    namespace: dict = {"__name__": "__grader__"}
    for code in prelude_code(source):
        exec(compile(code, "<notebook prelude>", "exec"), namespace)
    namespace["HIDDEN_SEED"] = seed
    namespace.update(functions)
    cell = next(c for c in source.nb.cells if nbgrader_meta(c).get("grade_id") == test.grade_id)
    try:
        exec(compile(cell.source, f"<{test.grade_id}>", "exec"), namespace)
    except Exception as error:
        return False, str(error).strip() or type(error).__name__
    return True, ""


def prelude_namespace(source: SourceNotebook) -> dict:
    """What the notebook's locked cells define (``F``, ``torchvision``, an optional
    library's class), run in this process as :func:`run_test_cell` runs them: the names
    a test cell forbids are resolved in it.  A cell that raises leaves what was defined
    before it (the names it would have defined are then forbidden by name only)."""
    namespace: dict = {"__name__": "__grader__"}
    try:
        for code in prelude_code(source):
            exec(compile(code, "<notebook prelude>", "exec"), namespace)
    except Exception:
        pass
    return namespace


def forbid_rule(name: str, namespace: dict) -> dict:
    """The rule the sandboxed verification enforces for a forbidden ``name`` as a test cell
    writes it (``F.cross_entropy``, ``torchvision.ops.box_iou``, ``CircleLoss``).

    The name is resolved in ``namespace`` (:func:`prelude_namespace`) and looked up in
    the course's table (``cvloss_ref._forbidden``), here, in the trusted process: the
    rule lists the torch names, kernels and Python functions that mean the built-in was
    used, as plain data (the verification process cannot import ``cvloss_ref``), and is
    labelled with ``name``.  A name that does not resolve is refused by its last part.
    """
    from cvloss_ref._forbidden import rule_for

    head, *rest = name.split(".")
    obj = namespace.get(head)
    try:
        for part in rest:
            obj = getattr(obj, part)
    except AttributeError:
        obj = None
    return rule_for(name if obj is None else obj, label=name).message()


#: Seeds of successive test cells are this far apart, so that no two cells draw the same
#: inputs (a prime, larger than the number of cases a cell draws from its seed).
SEED_STRIDE = 7919


@dataclass
class Verdict:
    """The trusted verification's verdict on one test cell."""

    passed: bool
    message: str = ""


@dataclass
class _Verification:
    """Verifies the test cells of one notebook, in order, with one sandboxed process that
    is restarted when it dies (a loss check restarts it only when the function checked
    changes, so that the hidden cases of a function that hangs fail at once)."""

    source: SourceNotebook
    verifier: Verifier
    seed: int
    notes: list[str] = field(default_factory=list)
    current: str | None = None  # the function whose checks ran last
    rules: dict[str, dict] = field(default_factory=dict)  # forbidden name -> its rule
    prelude: dict | None = None  # what the notebook's locked cells define (imports)

    def _ensure_running(self) -> None:
        if not self.verifier.alive():
            try:
                self.verifier.start()
            except RemoteError as error:
                self.notes.append(f"verification could not start: {error}")

    def _rules(self, names: tuple[str, ...]) -> list[dict]:
        """The rules the verification process enforces for the names a check forbids
        (``F.cross_entropy``): see :func:`forbid_rule`."""
        if self.prelude is None:
            self.prelude = prelude_namespace(self.source)
        for name in names:
            if name not in self.rules:
                self.rules[name] = forbid_rule(name, self.prelude)
        return [self.rules[name] for name in names]

    def _forbidden(self, test: TestCell) -> dict[str, list[dict]]:
        """Per function the cell checks, the rules of what its checks forbid."""
        forbid: dict[str, list[dict]] = {}
        for check in test.checks:
            forbid.setdefault(check.function, []).extend(self._rules(check.forbid))
        return forbid

    def rerun(self, test: TestCell, seed: int) -> Verdict:
        """A cell of ``assert_outputs_match`` checks: re-run it here on remote functions."""
        self.current = None
        self._ensure_running()
        forbid = self._forbidden(test)
        functions = {
            name: RemoteFunction(self.verifier, name, forbid.get(name, ()))
            for name in self.source.solution_ids
        }
        try:
            ok, message = run_test_cell(self.source, test, functions, seed)
        except Exception as error:  # a broken prelude: never stop the batch
            ok, message = False, f"verification error: {error}"
        if self.verifier.dead_reason:
            ok, message = False, f"{self.verifier.dead_reason}\n{message}"
        return Verdict(ok, message)

    def check_losses(self, test: TestCell, seed: int) -> Verdict:
        """A cell of ``assert_loss_matches`` checks: each run with ``check_loss`` here."""
        from cvloss_ref.testing import check_loss

        messages = []
        hung = getattr(self.verifier, "hung", {})  # functions that looped: not called again
        for check in test.checks:
            if check.function in hung:
                messages.append(f"{check.function}: {hung[check.function]}")
                continue
            if check.function != self.current:
                self.current = check.function
                self._ensure_running()
            fn = RemoteFunction(self.verifier, check.function, self._rules(check.forbid))
            try:
                result = check_loss(
                    fn,
                    check.reference,
                    devices=["cpu"],
                    cases=check.cases,
                    seed=seed,
                    **dict(check.params),
                )
                ok, message = result.ok, result.message()
            except Exception as error:  # never let one check stop the batch
                ok, message = False, f"{check.function}: verification error: {error}"
            if self.verifier.dead_reason:
                ok = False
                message = f"{check.function}: {self.verifier.dead_reason}\n{message}"
            if not ok:
                messages.append(message)
        return Verdict(not messages, "\n\n".join(messages))

    def explain(self, test: TestCell, verdict: Verdict) -> Verdict:
        """A failed verdict, led by what stopped the cells of the functions it checks."""
        if verdict.passed:
            return verdict
        causes = [
            f"the cell that defines {name}() did not run to the end: {error}"
            for name in test.functions
            if (error := self.verifier.load_errors.get(name))
        ]
        return Verdict(False, "\n".join([*causes, verdict.message]).strip())


def _verify(source, solutions, private: Path, options: Options, seed: int):
    """Per test cell, the trusted verification's :class:`Verdict`, and notes for the
    instructor.  Each solution cell is loaded on its own into the sandboxed verification
    process, so that a cell that fails or ends that process costs only its own
    function's points."""
    chunks = [(SUPPORT_CODE, support_code(source))] + [
        (grade_id, solutions.get(grade_id, CODE_STUB)) for grade_id in source.solution_ids
    ]
    verifier = Verifier(
        private, chunks, unsafe=options.unsafe, timeout=options.timeout, limits=options.limits
    )
    verification = _Verification(source, verifier, seed)
    verdicts: dict[str, Verdict] = {}
    try:
        for index, test in enumerate(source.tests):
            test_seed = seed + SEED_STRIDE * index
            if test.reruns:
                verdict = verification.rerun(test, test_seed)
            else:
                verdict = verification.check_losses(test, test_seed)
            verdicts[test.grade_id] = verification.explain(test, verdict)
        if verifier.load_errors:
            raised = [f"{name}: {error}" for name, error in verifier.load_errors.items()]
            verification.notes.append("solution cells raised: " + "; ".join(raised[:3]))
    finally:
        verifier.close()
    if verifier.output_dropped:
        verification.notes.append(
            f"{OUTPUT_TRUNCATED} in the verification: it keeps "
            f"{_size(verifier.limits.log_bytes)} of what the functions print, and drops the rest"
        )
    return verdicts, verification.notes


def _size(n: int) -> str:
    """``n`` bytes, for a person (``1.0 MiB``)."""
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n / 1024:.1f} KiB"


def grade_submission(
    student: str, assignment: str, folder: str, options: Options
) -> SubmissionResult:
    """Grade one submission (runs in a worker process; never raises)."""
    started = time.monotonic()
    sources = source_notebooks(assignment)
    result = SubmissionResult(student, assignment, max_score=sum(s.max_score for s in sources))
    try:
        for source in sources:
            result.add(source.name, _grade_notebook(source, Path(folder), options, result.flags))
        result.reason = "; ".join(nb.reason for nb in result.notebooks.values() if nb.reason)
    except Exception as error:  # an internal error costs this submission only
        result.reason = f"internal grading error: {type(error).__name__}: {error}"
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _not_graded(source: SourceNotebook, reason: str) -> NotebookResult:
    """A notebook that could not be read: every test cell scores 0 for ``reason``."""
    cells = [
        CellResult(
            grade_id=test.grade_id,
            description=test.description,
            hidden=test.hidden,
            points=0.0,
            max_points=test.points,
            status=NOT_GRADED,
            message=reason,
        )
        for test in source.tests
    ]
    return NotebookResult(max_score=source.max_score, cells=cells, reason=reason)


def _run_flags(run: dict) -> list[str]:
    """What the instructor should know about the notebook run."""
    flags = []
    if run.get("killed"):
        flags.append("notebook run stopped at the time limit")
    if run.get("restarts"):
        flags.append(f"kernel restarted {run['restarts']} time(s)")
    flags.extend(_truncation_flags(run))
    return flags


def _truncation_flags(run: dict) -> list[str]:
    """What the notebook run cut of the output (see ``_nbrunner.py``): the cells whose
    output was cut, and its log's bytes dropped.  Truncated output costs no points."""
    from ._nbrunner import CELL_OUTPUT_CHARS, OUTPUT_CAP

    flags = []
    if run.get("output_truncated"):
        cells = [str(c) for c in run.get("truncated_cells") or []]
        named = ", ".join(cells[:TRUNCATED_CELLS_SHOWN])
        if len(cells) > TRUNCATED_CELLS_SHOWN:
            named += f" and {len(cells) - TRUNCATED_CELLS_SHOWN} more"
        flags.append(
            f"{OUTPUT_TRUNCATED} in the notebook run ({named or 'some cells'}): it keeps "
            f"{CELL_OUTPUT_CHARS:,} characters of output per cell and {OUTPUT_CAP:,} in all, "
            "and drops the rest"
        )
    if run.get("log_dropped"):
        flags.append(
            f"{OUTPUT_TRUNCATED} in the notebook run's log: {_size(run['log_dropped'])} dropped"
        )
    return flags


def _cell_result(test: TestCell, run_cell, verdict: Verdict) -> CellResult:
    """One test cell's result: its points only if the notebook run and the trusted
    verification both passed it; the student reads the verification's message first."""
    run_cell = run_cell if isinstance(run_cell, dict) else {}
    status = run_cell.get("status", NOT_RUN)
    notebook_error = str(run_cell.get("error", ""))[:MAX_MESSAGE_CHARS]
    ok = status == "ok" and verdict.passed
    if ok:
        message = ""
    elif verdict.message:
        message = verdict.message
    elif status == NOT_RUN:
        message = "this test did not run (the notebook run ended before it)"
    else:
        message = notebook_error or status
    return CellResult(
        grade_id=test.grade_id,
        description=test.description,
        hidden=test.hidden,
        points=test.points if ok else 0.0,
        max_points=test.points,
        status=PASSED if ok else (NOT_RUN if status == NOT_RUN else FAILED),
        message=message,
        notebook=status,
        verified=verdict.passed,
    )


def _tagged(tag: str | None, fn, *args):
    """``fn(*args)`` with this thread's sandboxes in batch ``tag``."""
    with batch_tag(tag):
        return fn(*args)


def _grade_notebook(
    source: SourceNotebook, folder: Path, options: Options, flags: list[str]
) -> NotebookResult:
    nb, problem = _read_submission(folder / f"{source.name}.ipynb")
    if nb is None:
        return _not_graded(source, problem)
    solutions, test_flags = _solutions(nb, source)
    flags.extend(test_flags)
    flags.extend(_static_flags(solutions))
    seed = secrets.randbelow(MAX_SEED)  # drawn now: inputs no one saw before grading
    with tempfile.TemporaryDirectory(prefix="cvloss-grade-") as tmp:
        notebook_dir = Path(tmp) / "notebook"
        verify_dir = Path(tmp) / "verify"
        notebook_dir.mkdir()
        verify_dir.mkdir()
        # A private copy of the submission for the notebook run.
        shutil.copy(folder / f"{source.name}.ipynb", notebook_dir / "submitted.ipynb")
        # The two sandboxes are independent: the verification runs beside the notebook
        # run (the batch's tag goes with it, so that stopping the batch kills both).
        tag = current_batch_tag()
        with cf.ThreadPoolExecutor(1, thread_name_prefix="cvloss-verify") as pool:
            verifying = pool.submit(
                _tagged, tag, _verify, source, solutions, verify_dir, options, seed + 1
            )
            run = _run_notebook(source, solutions, notebook_dir, options, seed)
            verdicts, notes = verifying.result()
    flags.extend(_run_flags(run))
    flags.extend(notes)
    out = NotebookResult(max_score=source.max_score, outputs=run.get("outputs", {}))
    for test in source.tests:
        verdict = verdicts.get(test.grade_id, Verdict(False))
        cell = _cell_result(test, run.get("cells", {}).get(test.grade_id), verdict)
        out.cells.append(cell)
        out.score += cell.points
    disagree = [c.grade_id for c in out.cells if (c.notebook == "ok") != c.verified]
    if disagree:
        flags.append("notebook and verification disagree: " + ", ".join(disagree))
    return out


# ----------------------------------------------------------------------------- batch


def submissions(assignment: str) -> list[tuple[str, Path]]:
    if not SUBMITTED_DIR.is_dir():
        return []
    found = []
    for student_dir in sorted(SUBMITTED_DIR.iterdir()):
        folder = student_dir / assignment
        if student_dir.is_dir() and not student_dir.name.startswith(".") and folder.is_dir():
            found.append((student_dir.name, folder))
    return found


def _save(result: SubmissionResult, source_dir: Path, fingerprint: dict | None = None) -> None:
    """Write results.json (with the submission's :func:`fingerprint`, read back by
    :func:`previous_result`) and, for every notebook of the assignment, the notebook that
    nbgrader's formgrader shows (:func:`grading.formgrader.review_notebook`: the graded
    notebook with the run's outputs, the verdicts and the flags) under autograded/."""
    target = AUTOGRADED_DIR / result.student / result.assignment
    target.mkdir(parents=True, exist_ok=True)
    for source in source_notebooks(result.assignment):
        graded = result.notebooks.get(source.name)
        submitted, _ = _read_submission(source_dir / f"{source.name}.ipynb")
        solutions = _solutions(submitted, source)[0] if submitted is not None else {}
        outputs = getattr(graded, "outputs", None)
        path = target / f"{source.name}.ipynb"
        try:
            review = review_notebook(graded_notebook(source, solutions), result, graded, outputs)
            write_notebook(review, path)
        except (ValueError, UnicodeError, nbformat.ValidationError) as error:
            # e.g. a lone surrogate in a solution cell or an output: UTF-8 cannot write it
            problem = f"the graded notebook cannot be written ({type(error).__name__})"
            write_notebook(placeholder_notebook(result, graded, problem), path)
    data = result.to_dict()
    if fingerprint is not None:
        data[FINGERPRINT] = fingerprint
    tmp = target / "results.json.tmp"
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, target / "results.json")


#: The name under which the instructor's own solution is graded before a batch.
CANARY = "the instructor's solution"


class CanaryFailed(RuntimeError):
    """The instructor's own solution does not get full marks: the batch is not graded."""


def write_instructor_submission(sources: list[SourceNotebook], folder: Path) -> None:
    """The instructor's answers as a student would submit them, written to ``folder``."""
    for source in sources:
        nbformat.write(answered_version(source.nb), str(folder / f"{source.name}.ipynb"))


def canary_problem(result: SubmissionResult) -> str | None:
    """Why the instructor's solution did not get full marks, or None if it did."""
    if result.score >= result.max_score and not result.reason:
        return None
    lines = [
        f"the instructor's solution scores {result.score:g}/{result.max_score:g} when graded "
        "in the sandbox with these options, so no submission was graded (a package missing "
        "inside the sandbox, a path it hides, or a broken test would cost every student "
        "the same points):"
    ]
    lines += [f"  {note}" for note in result.notes]
    for name, notebook in result.notebooks.items():
        for cell in notebook.cells:
            if not cell.passed:
                first = (cell.message.strip().splitlines() or [cell.status])[0]
                lines.append(f"  {name}.ipynb {cell.grade_id}: {first[:300]}")
    return "\n".join(lines)


def _worker_failed(student: str, assignment: str, sources, error: Exception):
    return SubmissionResult(
        student,
        assignment,
        max_score=sum(s.max_score for s in sources),
        reason=f"grading worker failed: {type(error).__name__}",
    )


# ----------------------------------------------------------------------------- resuming

#: The key of results.json that says what was graded (the submission's and the
#: assignment's digests); SubmissionResult ignores it.
FINGERPRINT = "fingerprint"
#: Raised with the grading code's behaviour, so that a new one regrades every submission.
GRADER_VERSION = 1


def submission_digest(folder: Path, sources: list[SourceNotebook]) -> str:
    """SHA-256 of what grading reads of a submission: each notebook of the assignment (a
    missing or irregular file counts as such)."""
    digest = hashlib.sha256()
    for source in sources:
        path = Path(folder) / f"{source.name}.ipynb"
        digest.update(source.name.encode() + b"\0")
        if path.is_symlink() or not path.is_file():
            digest.update(b"missing\0" if not path.exists() else b"irregular\0")
            continue
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def assignment_version(sources: list[SourceNotebook], options: Options) -> str:
    """SHA-256 of what a grade depends on besides the submission: the source notebooks
    (tests, points, hidden tests), the options (time limit, limits, sandbox) and
    :data:`GRADER_VERSION`."""
    digest = hashlib.sha256(f"grader {GRADER_VERSION}\0".encode())
    digest.update(json.dumps(dataclasses.asdict(options), sort_keys=True).encode())
    for source in sources:
        digest.update(source.name.encode() + b"\0" + nbformat.writes(source.nb).encode())
    return digest.hexdigest()


def fingerprint(folder: Path, sources: list[SourceNotebook], options: Options) -> dict:
    return {
        "submission": submission_digest(folder, sources),
        "assignment": assignment_version(sources, options),
    }


def previous_result(student: str, assignment: str, expected: dict) -> SubmissionResult | None:
    """The saved result of this student's submission when it was graded from the same
    files and the same assignment version (its fingerprint), else None."""
    path = AUTOGRADED_DIR / student / assignment / "results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get(FINGERPRINT) != expected:
            return None
        return SubmissionResult.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ----------------------------------------------------------------------------- engines


class Interrupted(Exception):
    """The batch was stopped (Ctrl-C): every finished submission was recorded."""

    def __init__(self, recorded: int, left: int) -> None:
        super().__init__(
            f"interrupted: {recorded} submission(s) graded and recorded, {left} not graded; "
            "run the same command again to grade only those"
        )
        self.recorded, self.left = recorded, left


class BatchFailed(RuntimeError):
    """The batch cannot go on (the gradebook or the cluster was lost): every submission
    finished before was recorded."""


def _worker_init(scratch: str | None = None) -> None:
    """In a worker process: Ctrl-C is the parent's to handle (it ends the workers; a
    handler, not SIG_IGN, so that the processes a worker starts get the default again),
    and the worker dies with the parent, even one killed outright (its sandboxes die with
    it: ``--die-with-parent``).  Its temporary folders go under ``scratch``, which the
    parent removes even when it had to kill the worker."""
    from .sandbox import _die_with_parent

    signal.signal(signal.SIGINT, lambda *_: None)
    _die_with_parent()
    if scratch is not None:
        tempfile.tempdir = scratch


class LocalEngine:
    """Submissions graded by a pool of ``jobs`` worker processes on this machine: fresh
    Pythons (``spawn``), or forks of the fork server (``forkserver``, see
    :func:`grading.cli.start_fork_server`)."""

    def __init__(self, jobs: int, start_method: str = "spawn") -> None:
        context = multiprocessing.get_context(start_method)
        #: The workers' temporary folders (a submission's copies and sandboxes' files),
        #: removed by :meth:`stop` and :meth:`close`: a killed worker cleans nothing up.
        self.scratch = tempfile.mkdtemp(prefix="cvloss-batch-")
        self.pool = cf.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=context,
            initializer=_worker_init,
            initargs=(self.scratch,),
        )

    def submit(self, student: str, assignment: str, folder: Path, options: Options):
        return self.pool.submit(grade_submission, student, assignment, str(folder), options)

    def as_completed(self, futures):
        return cf.as_completed(futures)

    def result(self, future) -> SubmissionResult:
        return future.result()

    def stop(self) -> None:
        """End every worker now (their sandboxes die with them: ``--die-with-parent``)."""
        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        for process in processes:
            try:
                process.kill()
            except (OSError, ValueError):
                pass
        for process in processes:
            process.join(timeout=10)
        self.pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


class _Deferred:
    """SIGINT handling of the parent: a Ctrl-C raises KeyboardInterrupt, except while a
    finished submission is being written (``with deferred.critical():``), where it takes
    effect just after, so that a submission is recorded completely or not at all."""

    def __init__(self) -> None:
        self.inside = False
        self.pending = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum, frame) -> None:
        if self.inside:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def critical(self):
        self.inside = True
        try:
            yield
        finally:
            self.inside = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def autograde(
    assignment: str,
    *,
    jobs: int | None = None,
    options: Options = Options(),
    db_url: str | None = None,
    progress: bool = True,
    students: list[str] | None = None,
    force: bool = False,
    engine=None,
    skipped: list[str] | None = None,
    start_method: str = "spawn",
) -> list[SubmissionResult]:
    """Grade every submission of ``assignment``; returns the results, in student order.

    The instructor's own solution is graded first, in the same kind of sandbox and with
    the same options, as a canary: if it does not get full marks, :class:`CanaryFailed`
    is raised and nothing is written (no results, no gradebook entry).  Students' results
    are kept back until the canary has passed, then saved and recorded one at a time.

    A submission whose files and assignment version (:func:`fingerprint`, kept in its
    results.json) are those it was last graded with is not graded again (unless
    ``force``): its saved result is used, and recorded if the gradebook lacks it.  When
    nothing is left to grade, neither is the canary.  Ctrl-C ends the workers and their
    sandboxes at once and raises :class:`Interrupted`; what finished before was recorded.

    ``engine`` grades the submissions: a :class:`LocalEngine` of ``jobs`` processes
    started by ``start_method`` by default, or a
    :class:`grading.engine_dask.DaskEngine` (a Dask cluster).  The students
    not graded again are appended to ``skipped``.
    """
    from tqdm import tqdm

    from .gradebook import record, recorded

    sources = source_notebooks(assignment)  # fails early on an unknown assignment
    batch = [(s, f) for s, f in submissions(assignment) if students is None or s in students]
    if not batch:
        return []
    prints = {student: fingerprint(folder, sources, options) for student, folder in batch}
    results: dict[str, SubmissionResult] = {}
    if not force:
        in_gradebook: set[str] | None = None  # read only when something was graded before
        for student, _ in batch:
            previous = previous_result(student, assignment, prints[student])
            if previous is not None:
                if in_gradebook is None:
                    in_gradebook = recorded(assignment, db_url)
                if student not in in_gradebook:
                    record(previous, sources, db_url)
                results[student] = previous
    todo = [(s, f) for s, f in batch if s not in results]
    if skipped is not None:
        skipped.extend(s for s, _ in batch if s in results)
    if not todo:
        return [results[s] for s, _ in batch]
    # Each submission runs its notebook and its verification side by side: two processes.
    jobs = max(1, jobs or (os.cpu_count() or 2) // 2)
    waiting: list[tuple[SubmissionResult, Path]] = []  # graded before the canary passed
    graded = 0
    canary_passed = False

    def keep(result: SubmissionResult, folder: Path) -> None:
        nonlocal graded
        # results.json first: a submission saved but not recorded (the gradebook failed,
        # or Ctrl-C came between) is recorded by the next run without being graded again.
        _save(result, folder, prints.get(result.student))
        try:
            record(result, sources, db_url)
        except Exception as error:
            raise BatchFailed(
                f"the gradebook failed while recording {result.student} "
                f"({type(error).__name__}: {str(error).strip().splitlines()[0][:300]}); "
                f"{graded} submission(s) were recorded: run the same command again to grade "
                "only what is missing"
            ) from None
        results[result.student] = result
        graded += 1

    engine = engine or LocalEngine(min(jobs, len(todo) + 1), start_method)
    with (
        tempfile.TemporaryDirectory(prefix="cvloss-canary-") as canary_dir,
        _Deferred() as deferred,
    ):
        try:
            write_instructor_submission(sources, Path(canary_dir))
            canary = engine.submit(CANARY, assignment, Path(canary_dir), options)
            futures = {
                engine.submit(student, assignment, folder, options): (student, folder)
                for student, folder in todo
            }
            bar = tqdm(total=len(futures), desc=f"autograde {assignment}", disable=not progress)
            for future in engine.as_completed([canary, *futures]):
                if future is canary:
                    try:
                        problem = canary_problem(engine.result(future))
                    except BatchFailed:
                        raise
                    except Exception as error:  # the worker died
                        problem = f"grading the instructor's solution failed: {error!r}"
                    if problem:
                        raise CanaryFailed(problem)
                    canary_passed = True
                    with deferred.critical():
                        for result, folder in waiting:
                            keep(result, folder)
                    waiting.clear()
                    continue
                student, folder = futures[future]
                try:
                    result = engine.result(future)
                except BatchFailed:
                    raise
                except Exception as error:  # a worker that died: this submission only
                    result = _worker_failed(student, assignment, sources, error)
                if canary_passed:
                    with deferred.critical():
                        keep(result, folder)
                else:
                    waiting.append((result, folder))
                bar.update(1)
            bar.close()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C changes nothing
            engine.stop()
            raise Interrupted(graded, len(todo) - graded) from None
        except BaseException:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            engine.stop()
            raise
        engine.close()
    return [results[s] for s, _ in batch]


def table(results: list[SubmissionResult]) -> str:
    """The batch as a text table: student, score, max, flags (shortened), seconds."""
    rows = [("student", "score", "max", "flags", "seconds")]
    for r in results:
        flags = "; ".join(r.notes) or "-"
        if len(flags) > TABLE_FLAGS_WIDTH:
            flags = flags[: TABLE_FLAGS_WIDTH - 3] + "..."
        rows.append((r.student, f"{r.score:g}", f"{r.max_score:g}", flags, f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            row[i].ljust(widths[i]) if i in (0, 3) else row[i].rjust(widths[i]) for i in range(4)
        ]
        lines.append("  ".join(cells) + "  " + row[4].rjust(7))
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)
