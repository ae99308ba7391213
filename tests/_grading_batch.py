"""Sandboxed grading batches for the tests (a helper of the grading test modules).

:func:`grade` writes submissions into a private grading folder and runs
``python -m grading autograde`` on them, one process per assignment, all at once.  Every
process it starts carries a marker in its environment and a private ``TMPDIR`` (where the
grader makes its sandboxes' folders), so that :func:`survivors` finds what is left of
this batch, and of no other, once it is over: a grader, a bubblewrap sandbox, and the
runner, kernel or verifier inside one (they live in the sandbox's PID namespace, which
dies with its first process: the marked bubblewrap).

:func:`once` runs a batch once per test session, also under pytest-xdist, whose workers
each set up the module-scoped fixtures of the tests they run: the first worker that
needs a batch grades it while the others wait, and every worker reads its results.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "CVLOSS_TEST_BATCH"


@dataclass
class Batch:
    """What one :func:`grade` call did."""

    folder: Path  # CVLOSS_GRADING_DIR: submitted/, autograded/, feedback/, gradebook.db
    tmp: Path  # the graders' TMPDIR: their sandboxes' private folders
    env: dict[str, str]
    runs: dict[str, subprocess.CompletedProcess] = field(default_factory=dict)
    results: dict[tuple[str, str], dict] = field(default_factory=dict)  # (assignment, student)
    wall_s: float = 0.0

    def state(self) -> dict:
        """The batch as JSON (for :func:`once`); :meth:`from_state` reads it back."""
        return {
            "folder": str(self.folder),
            "tmp": str(self.tmp),
            "marker": self.env[MARKER],
            "runs": {k: [r.args, r.returncode, r.stdout, r.stderr] for k, r in self.runs.items()},
            "results": [[key, result] for key, result in self.results.items()],
            "wall_s": self.wall_s,
        }

    @classmethod
    def from_state(cls, state: dict) -> Batch:
        batch = _batch(Path(state["folder"]), Path(state["tmp"]), state["marker"])
        batch.runs = {k: subprocess.CompletedProcess(*run) for k, run in state["runs"].items()}
        batch.results = {tuple(key): result for key, result in state["results"]}
        batch.wall_s = state["wall_s"]
        return batch

    def run(self, command: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``command`` from the repository root, marked as part of this batch."""
        return subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def new_batch(root: Path) -> Batch:
    """An empty grading folder under ``root`` and the environment that marks the batch."""
    folder, tmp = root / "course", root / "tmp"
    folder.mkdir(parents=True)
    tmp.mkdir()
    return _batch(folder, tmp, uuid.uuid4().hex)


def _batch(folder: Path, tmp: Path, marker: str) -> Batch:
    env = dict(os.environ, CVLOSS_GRADING_DIR=str(folder), TMPDIR=str(tmp))
    env[MARKER] = marker
    env.pop("CVLOSS_GRADEBOOK_URL", None)  # the gradebook in the folder, whatever the caller
    return Batch(folder=folder, tmp=tmp, env=env)


def once(tmp_path_factory, name: str, build) -> dict:
    """``build(folder)`` (a JSON-serialisable dict), computed once per test session.

    pytest-xdist workers each set up the module-scoped fixtures of the tests they run
    (and with pytest 9.2, ``--dist loadgroup`` does not keep a fixture's tests on one
    worker: pytest-dev/pytest-xdist#1386), so a batch is graded by the first worker that
    needs it, under a lock in the session's temporary folder, and read by the others.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    done = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            folder = root / name
            folder.mkdir()
            done.write_text(json.dumps(build(folder)))
    return json.loads(done.read_text())


def write(batch: Batch, assignment: str, student: str, name: str, text: str | bytes) -> Path:
    target = batch.folder / "submitted" / student / assignment
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def grade(
    batch: Batch,
    assignments: list[str],
    *,
    jobs: int = 1,
    timeout: float = 60,
    limit: float = 900,
) -> Batch:
    """Autograde every submission of ``assignments`` in ``batch.folder``: one ``autograde``
    process per assignment, run at the same time (``--jobs`` each), then read the
    results."""
    start = time.monotonic()
    processes = {}
    for assignment in assignments:
        command = [sys.executable, "-m", "grading", "autograde", assignment]
        command += ["--jobs", str(jobs), "--timeout", str(timeout), "--no-progress"]
        processes[assignment] = (
            command,
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=batch.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    deadline = start + limit
    for assignment, (command, process) in processes.items():
        try:
            out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            err += f"\n(killed after {limit:g} s)"
        batch.runs[assignment] = subprocess.CompletedProcess(command, process.returncode, out, err)
    batch.wall_s += time.monotonic() - start
    for path in batch.folder.glob("autograded/*/*/results.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        batch.results[(path.parent.name, path.parent.parent.name)] = result
    return batch


def cells(result: dict) -> dict[str, dict]:
    """The graded test cells of a result, by grade_id (every notebook of it)."""
    return {c["grade_id"]: c for nb in result["notebooks"].values() for c in nb["cells"]}


def expect_lost(result: dict, lost: set[str], *, within: bool = False) -> None:
    """The test cells ``lost`` earned nothing and every other cell earned its points
    (``within``: the cells that earned nothing are some of ``lost``, at least one)."""
    graded = cells(result)
    zero = {g for g, c in graded.items() if c["points"] == 0}
    full = {g for g, c in graded.items() if c["points"] == c["max_points"] > 0}
    assert zero | full == set(graded), "partial points on a cell"
    assert lost <= set(graded), f"no test cells {sorted(lost - set(graded))}"
    if within:
        assert zero and zero <= lost, f"lost {sorted(zero)}, expected some of {sorted(lost)}"
    else:
        assert zero == lost, f"lost {sorted(zero)}, expected {sorted(lost)}"
    assert result["score"] == sum(graded[g]["max_points"] for g in full)


# ----------------------------------------------------------------------- what is left


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return b""


def survivors(batch: Batch, grace: float = 15.0) -> list[str]:
    """The processes of ``batch`` still running: those with its marker in their
    environment or its TMPDIR on their command line (a grader, a worker, a bubblewrap
    sandbox), and every process in the PID namespace of one of them (what runs inside a
    sandbox: the runner, the kernel, the verifier, their children).  Processes killed a
    moment ago take a moment to go: they have ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        found = _survivors(batch)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _survivors(batch: Batch) -> list[str]:
    marker = batch.env[MARKER].encode()
    tmp = str(batch.tmp).encode()
    host = os.readlink("/proc/self/ns/pid")
    listed, namespaces, found = {}, set(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            namespace = os.readlink(f"/proc/{entry}/ns/pid")
        except OSError:
            continue
        cmdline = _read(f"/proc/{entry}/cmdline")
        if not cmdline:  # a kernel thread or a zombie
            continue
        listed[entry] = (namespace, cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
        if marker in _read(f"/proc/{entry}/environ") or tmp in cmdline:
            found.add(entry)
            if namespace != host:
                namespaces.add(namespace)
    found |= {pid for pid, (namespace, _) in listed.items() if namespace in namespaces}
    return sorted(f"{pid}: {listed[pid][1]}" for pid in found)


#: Folders of the repository a grader has no reason to write to, and where tests look for
#: new or changed files (the default grading folder, grading/, included).
WATCHED = ["grading", "solutions", "exercises", "cvloss_ref"]


def snapshot() -> dict[Path, int]:
    """Files of the repository's top level and of WATCHED, with their mtimes."""
    paths = [p for p in ROOT.iterdir() if p.is_file()]
    for folder in WATCHED:
        paths += [p for p in (ROOT / folder).rglob("*") if "__pycache__" not in p.parts]
    files = {}
    for path in paths:
        try:
            if path.is_file():
                files[path] = path.stat().st_mtime_ns
        except OSError:  # removed meanwhile
            continue
    return files


#: What people edit while tests run (the working tree is theirs too): a new or changed
#: source file is theirs, not a grader's; the grader's outputs are results.json, notebook
#: copies, HTML pages, a database and a CSV, in the grading folder's output folders.
SOURCES = {".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".json", ".in"}
OUTPUTS = ("grading/submitted/", "grading/autograded/", "grading/feedback/")


def _edited(path: Path) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    source = path.suffix in SOURCES or path.name in ("Makefile", "LICENSE")
    return source and not relative.startswith(OUTPUTS)


def changes(before: dict[Path, int]) -> list[str]:
    """Files new or changed since the snapshot ``before``, but for edited sources."""
    after = snapshot()
    new = [f"new: {p}" for p in sorted(set(after) - set(before)) if not _edited(p)]
    changed = [
        f"changed: {p}"
        for p in sorted(set(after) & set(before))
        if after[p] != before[p] and not _edited(p)
    ]
    return new + changed


def files_under(folder: Path) -> set[str]:
    """Every file under ``folder``, relative to it (POSIX paths)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}
