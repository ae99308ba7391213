"""``collect``: import submissions downloaded from a learning-management system.

Accepts a zip archive or a folder whose files are named by student, as nbgrader's
``zip_collect`` expects them: by default ``<student>_<anything>_<file>.ipynb`` or
``<student>_<file>.ipynb`` is parsed by nbgrader's ``FileNameCollectorPlugin`` with the
regular expression :data:`NAMED_REGEXP`; files in a folder named by the student
(``<student>/<file>.ipynb``) work too.  When a student has several files of the same
name, the one with the latest timestamp (or last in order) wins.  Archives are read
member by member with size limits and never extracted to arbitrary paths.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from nbgrader.plugins import FileNameCollectorPlugin

from .course import SUBMITTED_DIR

NAMED_REGEXP = (
    r"^(?P<student_id>[A-Za-z0-9.-]+)_(?:attempt_(?P<timestamp>[0-9-]+)_)?"
    r"(?P<file_id>[^/]+\.ipynb)$"
)
MAX_FILE = 20 * 1024**2
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _entries(archive: Path):
    """(relative name, bytes) of every regular file, without extracting anything."""
    if archive.is_dir():
        for path in sorted(archive.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE:
                yield path.relative_to(archive).as_posix(), path.read_bytes()
        return
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or info.file_size > MAX_FILE:
                continue
            with zf.open(info) as member:
                yield info.filename, member.read(MAX_FILE + 1)[:MAX_FILE]


def collect(assignment: str, archive: Path, regexp: str = NAMED_REGEXP) -> dict[str, list[str]]:
    """Copy notebooks into grading/submitted/<student>/<assignment>/; returns what went where."""
    plugin = FileNameCollectorPlugin(named_regexp=regexp)
    chosen: dict[tuple[str, str], tuple[str, bytes]] = {}
    for name, data in _entries(Path(archive)):
        parts = name.split("/")
        if name.startswith("/") or ".." in parts:
            continue  # never trust paths from an archive
        info = plugin.collect(parts[-1])
        if info:
            student, file_id, stamp = (
                info["student_id"],
                info["file_id"],
                info.get("timestamp") or "",
            )
        elif len(parts) >= 2 and parts[-1].endswith(".ipynb"):
            student, file_id, stamp = parts[-2], parts[-1], ""
        else:
            continue
        file_id = Path(file_id).name
        if not (_SAFE.match(student) and _SAFE.match(file_id)) or student.startswith("."):
            continue
        key = (student, file_id)
        if key not in chosen or stamp >= chosen[key][0]:
            chosen[key] = (stamp, data)
    imported: dict[str, list[str]] = {}
    for (student, file_id), (stamp, data) in sorted(chosen.items()):
        target = SUBMITTED_DIR / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        (target / file_id).write_bytes(data)
        if stamp:
            (target / "timestamp.txt").write_text(stamp + "\n")
        imported.setdefault(student, []).append(file_id)
    return imported
