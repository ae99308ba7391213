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
import json
import multiprocessing
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course import AUTOGRADED_DIR, SUBMITTED_DIR
from .notebooks import (
    CODE_STUB,
    SourceNotebook,
    TestCell,
    nbgrader_meta,
    prelude_code,
    source_notebooks,
    support_code,
)
from .release import student_version
from .sandbox import Limits, Sandbox

MAX_NOTEBOOK_BYTES = 20 * 1024**2
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Options:
    timeout: float = 60.0  # seconds per cell and per function call
    unsafe: bool = False
    limits: Limits = field(default_factory=Limits)

    @property
    def notebook_wall(self) -> float:
        return 20 * self.timeout + 60


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
    nb = graded_notebook(source, solutions)
    nbformat.write(nb, str(private / "graded.ipynb"))
    tests = {t.grade_id: (t.functions[0] if t.functions else "") for t in source.tests}
    (private / "job.json").write_text(json.dumps({"timeout": options.timeout, "tests": tests}))
    shutil.copy(_HERE / "_nbrunner.py", private / "_nbrunner.py")
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
    result["killed"] = code is None
    result["exit_code"] = code
    return result


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


def _verify(source, solutions, private: Path, options: Options, seed: int) -> dict:
    """Per test cell: (passed, message) from check_loss run on the remote functions."""
    from cvloss_ref.testing import check_loss

    from .remote import RemoteError, RemoteFunction, Verifier

    chunks = [support_code(source)] + [solutions.get(g, CODE_STUB) for g in source.solution_ids]
    verifier = Verifier(private, chunks, unsafe=options.unsafe, timeout=options.timeout)
    verdicts: dict[str, dict] = {}
    notes: list[str] = []
    try:
        current = None
        for index, test in enumerate(source.tests):
            passed, messages = True, []
            if any(check.kind == "outputs" for check in test.checks):
                current = None
                if not verifier.alive():
                    try:
                        verifier.start()
                    except RemoteError as error:
                        notes.append(f"verification could not start: {error}")
                forbid: dict[str, list[str]] = {}
                for check in test.checks:
                    names = [name.rsplit(".", 1)[-1] for name in check.forbid]
                    forbid.setdefault(check.function, []).extend(names)
                functions = {
                    name: RemoteFunction(verifier, name, forbid.get(name, ()))
                    for name in source.solution_ids
                }
                try:
                    ok, message = run_test_cell(source, test, functions, seed + 7919 * index)
                except Exception as error:  # a broken prelude: never stop the batch
                    ok, message = False, f"verification error: {error}"
                if verifier.dead_reason:
                    ok, message = False, f"{verifier.dead_reason}\n{message}"
                verdicts[test.grade_id] = {"passed": ok, "message": message}
                continue
            for check in test.checks:
                if check.function != current:
                    current = check.function
                    if not verifier.alive():
                        try:
                            verifier.start()
                        except RemoteError as error:
                            notes.append(f"verification could not start: {error}")
                forbid = [name.rsplit(".", 1)[-1] for name in check.forbid]
                fn = RemoteFunction(verifier, check.function, forbid)
                try:
                    result = check_loss(
                        fn,
                        check.reference,
                        devices=["cpu"],
                        cases=check.cases,
                        seed=seed + 7919 * index,
                        **dict(check.params),
                    )
                    ok, message = result.ok, result.message()
                except Exception as error:  # never let one check stop the batch
                    ok, message = False, f"{check.function}: verification error: {error}"
                if verifier.dead_reason:
                    ok = False
                    message = f"{check.function}: {verifier.dead_reason}\n{message}"
                passed = passed and ok
                if not ok:
                    messages.append(message)
            verdicts[test.grade_id] = {"passed": passed, "message": "\n\n".join(messages)}
        if verifier.load_errors:
            notes.append("solution cells raised: " + "; ".join(verifier.load_errors[:3]))
    finally:
        verifier.close()
    return {"cells": verdicts, "notes": notes}


def grade_submission(student: str, assignment: str, folder: str, options: Options) -> dict:
    """Grade one submission (runs in a worker process; never raises)."""
    started = time.monotonic()
    result = {
        "student": student,
        "assignment": assignment,
        "notebooks": {},
        "score": 0.0,
        "max_score": 0.0,
        "flags": [],
        "reason": "",
    }
    try:
        for source in source_notebooks(assignment):
            result["max_score"] += source.max_score
            result["notebooks"][source.name] = _grade_notebook(
                source, Path(folder), options, result["flags"]
            )
            result["score"] += result["notebooks"][source.name]["score"]
        reasons = [nb["reason"] for nb in result["notebooks"].values() if nb.get("reason")]
        result["reason"] = "; ".join(reasons)
    except Exception as error:  # an internal error costs this submission only
        result["reason"] = f"internal grading error: {type(error).__name__}: {error}"
    result["seconds"] = round(time.monotonic() - started, 2)
    return result


def _grade_notebook(source: SourceNotebook, folder: Path, options: Options, flags) -> dict:
    out = {"score": 0.0, "max_score": source.max_score, "cells": [], "reason": ""}
    nb, problem = _read_submission(folder / f"{source.name}.ipynb")

    def zero_all(reason: str) -> dict:
        out["reason"] = reason
        for test in source.tests:
            out["cells"].append(
                {
                    "grade_id": test.grade_id,
                    "description": test.description,
                    "hidden": test.hidden,
                    "points": 0.0,
                    "max_points": test.points,
                    "status": "not graded",
                    "message": reason,
                }
            )
        return out

    if nb is None:
        return zero_all(problem)
    solutions, test_flags = _solutions(nb, source)
    flags.extend(test_flags)
    flags.extend(_static_flags(solutions))
    seed = secrets.randbelow(2**31 - 10**6)
    with tempfile.TemporaryDirectory(prefix="cvloss-grade-") as tmp:
        notebook_dir = Path(tmp) / "notebook"
        verify_dir = Path(tmp) / "verify"
        notebook_dir.mkdir()
        verify_dir.mkdir()
        # A private copy of the submission for the notebook run.
        shutil.copy(folder / f"{source.name}.ipynb", notebook_dir / "submitted.ipynb")
        run = _run_notebook(source, solutions, notebook_dir, options, seed)
        verdicts = _verify(source, solutions, verify_dir, options, seed + 1)
    if run.get("killed"):
        flags.append("notebook run stopped at the time limit")
    if run.get("restarts"):
        flags.append(f"kernel restarted {run['restarts']} time(s)")
    if run.get("output_truncated"):
        flags.append("output truncated")
    flags.extend(verdicts["notes"])
    disagree = []
    for test in source.tests:
        cell = run.get("cells", {}).get(test.grade_id)
        status = cell.get("status", "not run") if isinstance(cell, dict) else "not run"
        nb_error = str(cell.get("error", ""))[:4000] if isinstance(cell, dict) else ""
        verdict = verdicts["cells"].get(test.grade_id, {"passed": False, "message": ""})
        nb_ok = status == "ok"
        ok = nb_ok and verdict["passed"]
        if nb_ok != verdict["passed"]:
            disagree.append(test.grade_id)
        if ok:
            message = ""
        elif verdict["message"]:
            message = verdict["message"]
        elif status == "not run":
            message = "this test did not run (the notebook run ended before it)"
        else:
            message = nb_error or status
        out["cells"].append(
            {
                "grade_id": test.grade_id,
                "description": test.description,
                "hidden": test.hidden,
                "points": test.points if ok else 0.0,
                "max_points": test.points,
                "status": "passed" if ok else ("failed" if status != "not run" else status),
                "notebook": status,
                "verified": verdict["passed"],
                "message": message,
            }
        )
        out["score"] += test.points if ok else 0.0
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


def _save(result: dict, source_dir: Path) -> None:
    """Write results.json and a copy of the submitted notebooks under autograded/."""
    target = AUTOGRADED_DIR / result["student"] / result["assignment"]
    target.mkdir(parents=True, exist_ok=True)
    for path in source_dir.glob("*.ipynb"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_NOTEBOOK_BYTES:
            shutil.copyfile(path, target / path.name)
    tmp = target / "results.json.tmp"
    tmp.write_text(json.dumps(result, indent=1), encoding="utf-8")
    os.replace(tmp, target / "results.json")


def autograde(
    assignment: str,
    *,
    jobs: int | None = None,
    options: Options = Options(),
    db_url: str | None = None,
    progress: bool = True,
    students: list[str] | None = None,
) -> list[dict]:
    """Grade every submission of ``assignment``; returns the results, in student order."""
    from tqdm import tqdm

    from .gradebook import record

    sources = source_notebooks(assignment)  # fails early on an unknown assignment
    batch = [(s, f) for s, f in submissions(assignment) if students is None or s in students]
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: dict[str, dict] = {}
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(
        max_workers=min(jobs, max(1, len(batch))), mp_context=context
    ) as pool:
        futures = {
            pool.submit(grade_submission, student, assignment, str(folder), options): (
                student,
                folder,
            )
            for student, folder in batch
        }
        bar = tqdm(total=len(futures), desc=f"autograde {assignment}", disable=not progress)
        for future in cf.as_completed(futures):
            student, folder = futures[future]
            try:
                result = future.result()
            except Exception as error:  # a worker that died: this submission only
                result = {
                    "student": student,
                    "assignment": assignment,
                    "notebooks": {},
                    "score": 0.0,
                    "max_score": sum(s.max_score for s in sources),
                    "flags": [],
                    "reason": f"grading worker failed: {type(error).__name__}",
                    "seconds": 0.0,
                }
            _save(result, folder)
            record(result, sources, db_url)
            results[student] = result
            bar.update(1)
        bar.close()
    return [results[s] for s, _ in batch]


def table(results: list[dict]) -> str:
    rows = [("student", "score", "max", "flags", "seconds")]
    for r in results:
        notes = [r["reason"]] if r.get("reason") else []
        notes += r.get("flags", [])
        flags = "; ".join(notes) or "-"
        if len(flags) > 90:
            flags = flags[:87] + "..."
        rows.append(
            (
                r["student"],
                f"{r['score']:g}",
                f"{r['max_score']:g}",
                flags,
                f"{r.get('seconds', 0):.1f}",
            )
        )
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
