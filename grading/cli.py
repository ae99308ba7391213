"""``python -m grading``: the instructor's commands (run from the repository root).

release [ASSIGNMENT ...]      regenerate exercises/ from solutions/
check                         fail when exercises/ is stale or a source breaks conventions
autograde ASSIGNMENT          grade grading/submitted/*/ASSIGNMENT/ in sandboxes, in parallel
feedback ASSIGNMENT           write HTML feedback to grading/feedback/
collect ASSIGNMENT SOURCE     import a zip or folder of LMS downloads into grading/submitted/
export [--output grades.csv]  every submission's score as CSV
report ASSIGNMENT             list the flagged submissions and possible copies
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from .course import AUTOGRADED_DIR, ROOT, SUBMITTED_DIR, WORK_DIR, existing_assignments
from .results import SubmissionResult
from .similarity import THRESHOLD, find_copies

#: Where ``report`` writes its side-by-side pages: <grading folder>/similarity/<assignment>/.
SIMILARITY_FOLDER = "similarity"
#: The line that starts ``report``'s copy flags (after the grading flags).
COPIES_HEADING = "possible copies"


#: The modules a local worker needs, imported once by the fork server (see
#: :func:`start_fork_server`).
WORKER_MODULES = ["grading.autograde"]


def start_fork_server() -> bool:
    """Start, now, the process that local workers are forked from (multiprocessing's
    ``forkserver``), importing :data:`WORKER_MODULES` (torch among them, about 3 s).

    ``python -m grading autograde`` calls it first, so that the server's imports run
    beside the command's own instead of before the first worker can start, and every
    worker of the batch is a fork of it, with nothing left to import.  The server is a
    fresh Python that imports and forks, nothing else (no threads, no torch operation:
    safe to fork), with the command's environment; it exits with the command, and the
    workers with it (``--die-with-parent``).  Not for callers that change the grading
    folders or the environment between batches of one process (tests): their workers
    would read the server's; :class:`grading.autograde.LocalEngine` spawns fresh ones
    unless told.  False if the server could not start (then workers are spawned)."""
    import multiprocessing.forkserver  # light: no grading module is imported here

    try:
        multiprocessing.get_context("forkserver").set_forkserver_preload(WORKER_MODULES)
        multiprocessing.forkserver.ensure_running()
    except (OSError, ValueError):  # e.g. no socket: the workers are spawned instead
        return False
    return True


def _assignment(name: str) -> str:
    if name not in existing_assignments():
        known = ", ".join(existing_assignments())
        raise argparse.ArgumentTypeError(f"unknown assignment {name!r} (known: {known})")
    return name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grading",
        description="Release, grade and report the course's nbgrader assignments.",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="gradebook SQLAlchemy URL (default: sqlite:///grading/gradebook.db, or "
        "$CVLOSS_GRADEBOOK_URL)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("release", help="regenerate exercises/ from solutions/")
    p.add_argument("assignments", nargs="*", type=_assignment, metavar="ASSIGNMENT")
    p.set_defaults(func=_release)

    p = sub.add_parser("check", help="fail when exercises/ is out of date or a source is malformed")
    p.set_defaults(func=_check)

    p = sub.add_parser("autograde", help="grade every submission of an assignment")
    p.add_argument("assignment", type=_assignment)
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        help="parallel submissions (default: half the CPUs: each runs two sandboxes at once)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit per notebook cell and per function call (default 60)",
    )
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run student code without bubblewrap (trusted code only)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--force",
        action="store_true",
        help="regrade every submission (by default a submission graded before from the same "
        "files and the same assignment version is not graded again)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="grade on the workers of a Dask cluster (tcp://HOST:8786; default "
        "$CVLOSS_DASK_SCHEDULER, else this machine's processes); see grading/README.md",
    )
    p.set_defaults(func=_autograde)

    p = sub.add_parser("feedback", help="write per-student HTML feedback")
    p.add_argument("assignment", type=_assignment)
    p.set_defaults(func=_feedback)

    p = sub.add_parser(
        "collect",
        help="import LMS downloads (zip or folder) into grading/submitted/",
        description="Import a Canvas or Moodle download (zip or folder), or files named "
        "<student>_<file> or <student>/<file>; the latest attempt wins, late ones are "
        "flagged, and every file not imported is listed with the reason.",
    )
    p.add_argument("assignment", type=_assignment)
    p.add_argument("source", type=Path, metavar="ARCHIVE_OR_DIR")
    p.add_argument(
        "--roster",
        type=Path,
        metavar="CSV",
        help="map LMS ids to student ids: columns student_id, canvas_id, moodle_id, name "
        "(without it, student ids are the LMS names made safe)",
    )
    p.set_defaults(func=_collect)

    p = sub.add_parser("export", help="write every submission's score as CSV")
    p.add_argument("--output", "-o", type=Path, default=Path("grades.csv"))
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "report",
        help="list flagged submissions of an assignment, then possible copies",
        description="List the submissions that grading flagged (results.json), then the "
        "solution cells that share most of their token fingerprints (identifiers and "
        "literals normalised, comments and the released stub ignored) with cvloss_ref's "
        "source, the instructor's solution or another student's: the pair, the function, "
        "the share of fingerprints found in the other (both ways for two students; flagged "
        f"from {THRESHOLD:g}, see grading/similarity.py for the measured values) and a "
        "side-by-side HTML page in <grading folder>/similarity/ASSIGNMENT/. Reads "
        "grading/submitted/ (no autograde needed); unreadable notebooks are listed, not "
        "compared. Flags never change a score.",
    )
    p.add_argument("assignment", type=_assignment)
    p.set_defaults(func=_report)
    return parser


def _shown(path: Path) -> str:
    """A path relative to the repository root when it lies inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _results(assignment: str) -> list[SubmissionResult]:
    if not AUTOGRADED_DIR.is_dir():
        return []
    paths = sorted(AUTOGRADED_DIR.glob(f"*/{assignment}/results.json"))
    return [SubmissionResult.load(path) for path in paths]


def _release(args: argparse.Namespace) -> int:
    from .release import ConventionError, release

    try:
        written = release(args.assignments or None)
    except ConventionError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return _fail(f"nothing released: {len(error.problems)} problem(s) in solutions/")
    for path in written:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .release import check

    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return _fail(f"{len(problems)} problem(s) in solutions/ or exercises/")
    print("exercises/ is up to date and the source notebooks follow the conventions")
    return 0


def _db_origin(args: argparse.Namespace) -> str:
    """Where the gradebook's URL came from, as the error messages name it."""
    if getattr(args, "db", None):
        return "--db"
    return "CVLOSS_GRADEBOOK_URL" if os.environ.get("CVLOSS_GRADEBOOK_URL") else "the gradebook"


def _check_db(args: argparse.Namespace) -> str | None:
    """Why the gradebook cannot be used (checked before anything is graded), or None."""
    from .gradebook import GradebookUnavailable, check_db

    try:
        check_db(None, origin=_db_origin(args))
    except GradebookUnavailable as error:
        return str(error)
    return None


def _autograde(args: argparse.Namespace) -> int:
    scheduler = args.scheduler or os.environ.get("CVLOSS_DASK_SCHEDULER")
    # Before anything else, so that the server's imports run beside this process's.
    forked = not scheduler and start_fork_server()
    from .autograde import BatchFailed, CanaryFailed, Interrupted, Options, autograde, table
    from .sandbox import SandboxUnavailable, require_sandbox

    if problem := _check_db(args):
        return _fail(problem)
    try:
        require_sandbox(args.unsafe_no_sandbox)
    except SandboxUnavailable as error:
        return _fail(str(error))
    if args.jobs is not None and args.jobs < 1:
        return _fail("--jobs must be at least 1")
    options = Options(timeout=args.timeout, unsafe=args.unsafe_no_sandbox)
    engine = None
    if scheduler:
        from .engine_dask import ClusterUnavailable, DaskEngine

        try:
            engine = DaskEngine(scheduler, unsafe=args.unsafe_no_sandbox)
        except ClusterUnavailable as error:
            return _fail(str(error))
        except KeyboardInterrupt:
            print("interrupted before grading: nothing was graded", file=sys.stderr)
            return 130
    skipped: list[str] = []
    try:
        results = autograde(
            args.assignment,
            jobs=args.jobs,
            options=options,
            progress=not args.no_progress,
            students=args.student,
            force=args.force,
            engine=engine,
            skipped=skipped,
            start_method="forkserver" if forked else "spawn",
        )
    except CanaryFailed as error:
        return _fail(str(error))
    except Interrupted as error:
        print(error, file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before the batch started: nothing graded or recorded
        print("interrupted before grading: nothing was graded", file=sys.stderr)
        return 130
    except BatchFailed as error:
        return _fail(str(error))
    finally:
        if engine is not None:
            engine.disconnect()
    if not results:
        return _fail(f"no submissions in grading/submitted/*/{args.assignment}/")
    if skipped:
        print(
            f"{len(skipped)} submission(s) already graded from the same files and assignment "
            "version were not graded again (--force regrades them)",
            file=sys.stderr,
        )
    print(table(results))
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from .feedback import feedback

    pages = feedback(args.assignment)
    for page in pages:
        print(f"wrote {_shown(page)}")
    return 0 if pages else _fail(f"nothing autograded for {args.assignment} yet")


def _collect(args: argparse.Namespace) -> int:
    from .collect import collect, read_roster

    if not args.source.exists():
        return _fail(f"{args.source} does not exist")
    try:
        roster = read_roster(args.roster) if args.roster else None
    except (OSError, ValueError) as error:
        return _fail(f"cannot read roster {args.roster}: {error}")
    try:
        result = collect(args.assignment, args.source, roster)
    except Exception as error:  # a corrupt archive
        return _fail(f"cannot read {args.source}: {error}")
    print(result.report())
    return 0 if result.imported else _fail(f"no submissions imported from {args.source}")


def _export(args: argparse.Namespace) -> int:
    from .gradebook import scores

    if problem := _check_db(args):
        return _fail(problem)
    rows = scores()
    notes = {
        (r.student, assignment): "; ".join(r.notes)
        for assignment in existing_assignments()
        for r in _results(assignment)
    }
    with open(args.output, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "assignment", "score", "max_score", "flags"])
        for row in rows:
            key = (row["student"], row["assignment"])
            writer.writerow(
                [*key, f"{row['score']:g}", f"{row['max_score']:g}", notes.get(key, "")]
            )
    print(f"wrote {args.output} ({len(rows)} submissions)")
    return 0


def _report(args: argparse.Namespace) -> int:
    flagged = [r for r in _results(args.assignment) if r.notes]
    if not flagged:
        print(f"no flagged submissions for {args.assignment}")
    for r in flagged:
        print(f"{r.student}: {r.score:g}/{r.max_score:g}")
        if r.reason:
            print(f"  not graded: {r.reason}")
        for flag in r.flags:
            print(f"  {flag}")
    _report_copies(args.assignment)
    return 0


def _report_copies(assignment: str) -> None:
    """The solution cells that are near-copies (grading.similarity) of cvloss_ref's source,
    the instructor's solution or another student's, each with a side-by-side page under
    similarity/<assignment>/; nothing when nothing was submitted.  Scores are not touched."""
    pages = WORK_DIR / SIMILARITY_FOLDER / assignment
    for stale in pages.glob("*.html") if pages.is_dir() else []:
        stale.unlink()
    found = find_copies(assignment, SUBMITTED_DIR, pages)
    if not found.students and not found.skipped:
        return
    if not found.flags:
        print(f"{COPIES_HEADING}: none among {found.students} submissions (score < {THRESHOLD:g})")
    else:
        print(f"{COPIES_HEADING} (score >= {THRESHOLD:g}; flags never change a score):")
    for flag in found.flags:
        print(f"  {flag.line()}")
        print(f"    side by side: {_shown(flag.page)}")
    for note in found.skipped:
        print(f"  not compared: {note}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.db:
        return args.func(args)
    # --db reaches nbgrader and the worker processes through the environment, for this
    # command only: a caller in the same process (a notebook, a test) keeps its own setting.
    before = os.environ.get("CVLOSS_GRADEBOOK_URL")
    os.environ["CVLOSS_GRADEBOOK_URL"] = args.db
    try:
        return args.func(args)
    finally:
        if before is None:
            del os.environ["CVLOSS_GRADEBOOK_URL"]
        else:
            os.environ["CVLOSS_GRADEBOOK_URL"] = before
