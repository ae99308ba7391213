"""``make student-release``: the repository as students get it, without the answers.

Students need the book, the reference package, the exercise notebooks and the files that
build an environment for them (``binder/``, ``lab/``, ``pyproject.toml``, the Makefile);
they must not get ``solutions/`` (every answer), ``grading/`` (the hidden-test seed and the
demo submissions), the test suite or CI.  This command writes the committed state of
``HEAD``, restricted to :data:`STUDENT_PATHS`, as one new commit on a branch (``student`` by
default: the book's launch buttons and the exercises' install cell point at it), and/or as
a plain folder.  Push the branch where students clone from::

    python -m grading.student                   # commit to the branch "student"
    python -m grading.student --folder DIR      # also (or with --no-branch, only) a folder
    git push origin student

It reads only what is committed, so an uncommitted solution can never leak; each run adds
one commit whose parent is the branch's previous tip, so students can ``git pull``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .course import ROOT

#: What students get: paths (files or folders) at the repository root.
STUDENT_PATHS = (
    ".gitignore",
    "LICENSE",
    "Makefile",
    "README.md",
    "_config.yml",
    "_toc.yml",
    "binder",
    "book",
    "constraints.txt",
    "cvloss_ref",
    "exercises",
    "lab",
    "package-lock.json",
    "package.json",
    "pyproject.toml",
)
#: Never in a student release, whatever STUDENT_PATHS says (checked after filtering).
FORBIDDEN = ("solutions", "grading", "tests", "nbgrader_config.py")
DEFAULT_BRANCH = "student"


class StudentReleaseError(RuntimeError):
    """The release could not be written (not a git checkout, nothing committed, ...)."""


def _git(*args: str, env: dict | None = None, input: bytes | None = None) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise StudentReleaseError(f"git {' '.join(args)} failed: {message}")
    return result.stdout.decode().strip()


def student_tree(commit: str = "HEAD") -> str:
    """The git tree of ``commit`` restricted to :data:`STUDENT_PATHS` (its id)."""
    entries = _git("ls-tree", commit).splitlines()  # "<mode> <type> <id>\t<name>"
    keep = [line for line in entries if line.split("\t", 1)[1] in STUDENT_PATHS]
    leaked = [line.split("\t", 1)[1] for line in keep if line.split("\t", 1)[1] in FORBIDDEN]
    if leaked:  # defensive: STUDENT_PATHS and FORBIDDEN must never overlap
        raise StudentReleaseError(f"the student tree would contain {leaked}")
    return _git("mktree", input=("\n".join(keep) + "\n").encode())


def commit_branch(branch: str = DEFAULT_BRANCH, commit: str = "HEAD") -> str:
    """Commit the student tree of ``commit`` on ``branch`` (created when missing); returns
    the new commit's id.  Nothing is committed when the tree has not changed."""
    tree = student_tree(commit)
    source = _git("rev-parse", "--short", commit)
    try:
        parent = _git("rev-parse", "--verify", "-q", f"refs/heads/{branch}")
    except StudentReleaseError:
        parent = ""
    if parent and _git("rev-parse", f"{parent}^{{tree}}") == tree:
        return parent
    args = ["commit-tree", tree, "-m", f"Student release of {source}"]
    if parent:
        args += ["-p", parent]
    new = _git(*args)
    _git("update-ref", f"refs/heads/{branch}", new, *([parent] if parent else []))
    return new


def write_folder(folder: Path, commit: str = "HEAD") -> Path:
    """Write the student tree of ``commit`` into ``folder`` (which must not exist)."""
    folder = Path(folder)
    if folder.exists():
        raise StudentReleaseError(f"--folder {folder}: it exists; name a new folder")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", student_tree(commit)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    folder.mkdir(parents=True)
    with tempfile.TemporaryFile() as tar:
        tar.write(archive)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as members:
            members.extractall(folder, filter="data")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grading.student",
        description="Write the students' copy of the course (no solutions/, no grading/).",
    )
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help="branch to commit to")
    parser.add_argument("--no-branch", action="store_true", help="write no branch")
    parser.add_argument("--folder", type=Path, help="also write the files into this new folder")
    parser.add_argument("--commit", default="HEAD", help="the commit to release (default HEAD)")
    args = parser.parse_args(argv)
    try:
        if not args.no_branch:
            new = commit_branch(args.branch, args.commit)
            print(
                f"branch {args.branch} is at {new[:12]}; publish it with "
                f"`git push origin {args.branch}`"
            )
        if args.folder:
            print(f"wrote {write_folder(args.folder, args.commit)}")
    except StudentReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
