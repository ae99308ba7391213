"""Grading on a Dask cluster: ``autograde --scheduler tcp://HOST:8786``.

The grader (the one process that writes results and the gradebook) sends each submission,
the instructor's canary first, to the workers of an existing ``distributed`` cluster.  A
task carries the submission's notebooks as bytes (workers need not share a file system
with the grader); the worker writes them to a private folder and grades them with
:func:`grading.autograde.grade_submission`, in its own bubblewrap sandboxes, exactly as a
local worker process does, and sends back the result as JSON.

Before anything is graded, :class:`DaskEngine` checks the scheduler (which unpickles the
tasks, and so must import ``grading`` too) and every worker (:func:`environment`): each
must import this checkout's ``grading`` package, at the same git commit, with the same
code (a digest of ``grading/``, ``cvloss_ref/`` and ``solutions/``), the same Python and
the same versions of the packages grading uses, and bubblewrap must work on the workers.  A worker
that differs is named with what differs, and the command stops; a task that lands on such
a worker later (one that joined during the batch) checks again and stops the batch.

A worker that dies mid-batch (killed, out of memory, its machine lost) has its tasks run
again elsewhere by the scheduler; each submission's result is read once, from its one
future.  Ctrl-C cancels the tasks and kills this batch's sandboxes on every worker
(:func:`grading.sandbox.stop_batch`).  A lost scheduler stops the command with a message;
what finished before was recorded, and a re-run grades only what is missing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import platform
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from .course import ROOT
from .results import SubmissionResult

#: Seconds to reach the scheduler, and for a first worker to be there.
CONNECT_S = 15
WORKERS_S = 60
#: Seconds the grader gives the workers to end this batch's sandboxes on Ctrl-C.
STOP_S = 20
#: What a worker must have in the same versions as the grader.
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "nbformat",
    "nbclient",
    "nbgrader",
    "ipykernel",
    "jupyter_client",
    "dask",
    "distributed",
    "cloudpickle",
)
#: The folders whose files make the grading code's digest.
CODE = (("grading", "*.py"), ("cvloss_ref", "**/*.py"), ("solutions", "**/*.ipynb"))
#: Characters of a commit or digest shown in a message.
DIGEST_SHOWN = 12
#: Evaluated on each worker first: where it imports ``grading`` from (None if it cannot).
_FIND_GRADING = "(lambda s: s and s.origin)(__import__('importlib.util').util.find_spec('grading'))"


class ClusterUnavailable(RuntimeError):
    """The scheduler cannot be reached, no worker joined, or a worker differs."""


class WorkerMismatch(RuntimeError):
    """Raised by a task on a worker whose checkout or environment differs: ``args`` are
    the worker's address and the differences."""


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _code_digest() -> str:
    digest = hashlib.sha256()
    for folder, pattern in CODE:
        for path in sorted((ROOT / folder).glob(pattern)):
            if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """What a worker must share with the grader: the checkout (commit and code digest),
    Python, the packages' versions, and whether bubblewrap works.  Computed afresh at each
    check (a tenth of a second): a checkout edited under a running worker is seen."""
    from .sandbox import bwrap_works

    return {
        "commit": _git_commit(),
        "code": _code_digest(),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
        "bubblewrap": bwrap_works(),
    }


def differences(expected: dict, actual: dict, unsafe: bool = False) -> list[str]:
    """What differs between the grader's :func:`environment` and a worker's."""
    found = []
    for key in ("commit", "code", "python"):
        if expected.get(key) != actual.get(key):
            theirs, ours = (str(v)[:DIGEST_SHOWN] for v in (actual.get(key), expected.get(key)))
            found.append(f"{key} {theirs} (grader: {ours})")
    for name, version in expected.get("packages", {}).items():
        theirs = actual.get("packages", {}).get(name)
        if theirs != version:
            found.append(f"{name} {theirs} (grader: {version})")
    if not unsafe and not actual.get("bubblewrap"):
        found.append("bubblewrap is missing or cannot make namespaces")
    return found


def _files(folder: Path) -> dict[str, bytes | None]:
    """The submission's notebooks as a task carries them: bytes (at most one byte more
    than grading reads, so that a file too large is still refused as such), or None for
    a name that is there but not a regular file.  A missing file is left out."""
    from .autograde import MAX_NOTEBOOK_BYTES

    files: dict[str, bytes | None] = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        if path.is_symlink() or not path.is_file():
            files[path.name] = None
            continue
        with open(path, "rb") as file:
            files[path.name] = file.read(MAX_NOTEBOOK_BYTES + 1)
    return files


def grade_remote(
    student: str,
    assignment: str,
    files: dict[str, bytes | None],
    options,
    expected: dict,
    tag: str,
) -> str:
    """A task, on a worker: check the worker, write the submission to a private folder,
    grade it in sandboxes of batch ``tag``; returns the result as JSON."""
    from .autograde import grade_submission
    from .sandbox import batch_tag

    problems = differences(expected, environment(), options.unsafe)
    if problems:
        from distributed import get_worker

        raise WorkerMismatch(get_worker().address, "; ".join(problems))
    with tempfile.TemporaryDirectory(prefix="cvloss-submission-") as tmp, batch_tag(tag):
        folder = Path(tmp) / "submission"
        folder.mkdir()
        for name, data in files.items():
            path = folder / Path(name).name
            if data is None:
                path.mkdir()  # not a regular file, as the submitted one was not
            else:
                path.write_bytes(data)
        return grade_submission(student, assignment, str(folder), options).to_json()


def _stop_here(tag: str) -> int:
    from .sandbox import stop_batch

    return stop_batch(tag)


class DaskEngine:
    """Submissions graded by the workers of the Dask cluster at ``address``."""

    def __init__(self, address: str, *, unsafe: bool = False, connect_s: float = CONNECT_S):
        from distributed import Client

        self.address = address
        self.tag = uuid.uuid4().hex
        self.futures: list = []
        self.tasks: dict = {}  # future key -> what submit was given
        self.refused: dict[str, str] = {}  # worker address -> its differences
        self.expected = environment()
        self.unsafe = unsafe
        # A lost scheduler is reported by :meth:`result`, once, in the grader's words.
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            self.client = Client(address, timeout=connect_s, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterUnavailable(
                f"--scheduler {address}: cannot reach the Dask scheduler ({error}); expected "
                "tcp://HOST:PORT of a running `dask scheduler` (see grading/README.md)"
            ) from None
        try:
            self.preflight()
        except BaseException:
            self.client.close()
            raise

    def preflight(self) -> None:
        """Refuse the cluster when a worker cannot import this checkout's ``grading`` or
        differs from the grader (:func:`differences`)."""
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_S)
        except TimeoutError:
            raise ClusterUnavailable(
                f"no Dask worker joined the scheduler at {self.address} within {WORKERS_S} s"
            ) from None
        if not self.client.run_on_scheduler(eval, _FIND_GRADING):
            raise ClusterUnavailable(
                f"the Dask scheduler at {self.address} cannot import the course's grading "
                "package (it reads the tasks): start `dask scheduler` in the course checkout "
                "with PYTHONPATH set to it (see grading/README.md)"
            )
        problems = differences(self.expected, self.client.run_on_scheduler(environment), True)
        if problems:
            raise ClusterUnavailable(
                f"refused: the Dask scheduler at {self.address} differs from the grader: "
                + "; ".join(problems)
            )
        where = self.client.run(eval, _FIND_GRADING)
        lost = sorted(worker for worker, origin in where.items() if not origin)
        if lost:
            raise ClusterUnavailable(
                f"worker(s) {', '.join(lost)} cannot import the course's grading package: "
                "start `dask worker` in the course checkout with PYTHONPATH set to it "
                "(see grading/README.md)"
            )
        found = self.client.run(environment)
        bad = {w: differences(self.expected, env, self.unsafe) for w, env in found.items()}
        bad = {worker: problems for worker, problems in bad.items() if problems}
        if bad:
            lines = [f"  {worker}: {'; '.join(problems)}" for worker, problems in bad.items()]
            raise ClusterUnavailable(
                "refused: these Dask workers differ from the grader (same commit, code, "
                "Python and packages, and a working bubblewrap needed):\n" + "\n".join(lines)
            )

    def submit(self, student: str, assignment: str, folder: Path, options, workers=None):
        future = self.client.submit(
            grade_remote,
            student,
            assignment,
            _files(folder),
            options,
            self.expected,
            self.tag,
            key=f"cvloss-grade-{assignment}-{student}-{uuid.uuid4().hex[:8]}",
            pure=False,
            **({"workers": workers, "allow_other_workers": False} if workers else {}),
        )
        self.futures.append(future)
        self.tasks[future.key] = (student, assignment, folder, options)
        return future

    def _elsewhere(self, future, address: str, problems: str):
        """Skip the worker at ``address`` (it joined after the preflight and differs):
        say so once, and send ``future``'s submission to the workers not refused."""
        from .autograde import BatchFailed

        if address not in self.refused:
            self.refused[address] = problems
            print(
                f"skipped Dask worker {address}: it differs from the grader ({problems})",
                file=sys.stderr,
                flush=True,
            )
        good = [w for w in self.client.scheduler_info()["workers"] if w not in self.refused]
        if not good:
            raise BatchFailed(
                "every Dask worker differs from the grader ("
                + "; ".join(f"{w}: {p}" for w, p in self.refused.items())
                + "); stop them or bring them to the grader's commit and environment, then "
                "run the same command again"
            )
        return self.submit(*self.tasks[future.key], workers=good)

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures, loop=self.client.loop)

    def result(self, future) -> SubmissionResult:
        from .autograde import BatchFailed

        try:
            return SubmissionResult.from_json(future.result())
        except WorkerMismatch as error:
            # A worker that joined after the preflight and differs: its submissions are
            # graded by the others (waiting here; the other tasks run meanwhile).
            address, problems = [*error.args, "", ""][:2]
            return self.result(self._elsewhere(future, str(address), str(problems)))
        except Exception as error:
            if self._lost():
                raise BatchFailed(self._lost_message()) from None
            if type(error).__name__ in ("CancelledError", "FutureCancelledError"):
                raise BatchFailed(self._lost_message()) from None
            raise

    def _lost(self) -> bool:
        return self.client.status not in ("running", "connecting")

    def _lost_message(self) -> str:
        return (
            f"lost the Dask scheduler at {self.address}: what finished before was recorded; "
            "start it (and its workers) again and run the same command to grade only what "
            "is missing"
        )

    def stop(self) -> None:
        """Cancel the tasks, and kill this batch's sandboxes on every worker."""
        try:
            self.client.cancel(self.futures, force=True)
            self.client.run(_stop_here, self.tag, wait=True, on_error="return")
        except Exception:  # a lost scheduler: its workers' sandboxes die with their tasks
            pass

    def close(self) -> None:
        pass

    def disconnect(self) -> None:
        try:
            self.client.close(timeout=10)
        except Exception:
            pass
