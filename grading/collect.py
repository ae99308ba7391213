"""``collect``: import submissions downloaded from a learning-management system.

The source is a zip archive or a folder, read member by member (never extracted, never
executed).  Each file name is recognised as one of these layouts, tried in this order:

Moodle, "Download all submissions"
    ``Full Name_<participant>_assignsubmission_file_/<file>`` (one folder per student; the
    files may sit in sub-folders), or ``Full Name_<participant>_assignsubmission_file_<file>``
    when "Download submissions in folders" is off.  Moodle replaces ``_`` in names by spaces,
    so the name ends at the first ``_<digits>_assignsubmission_``.  The number is the
    assignment's *participant* identifier (Moodle numbers participants per assignment; under
    blind marking the name reads ``Participant``).  Other plugins' folders
    (``assignsubmission_onlinetext_``, ...) hold no notebook and are reported.  Moodle keeps
    only the latest attempt and does not mark late submissions in names.
``<student>_attempt_<timestamp>_<file>``
    this course's own names; the latest timestamp wins and is written to ``timestamp.txt``.
Canvas, "Download Submissions"
    ``<name>_<user id>_<upload id>_<file>`` and ``<name>_LATE_<user id>_<upload id>_<file>``
    for late ones, ``<name>`` being the login or ``lastnamefirstname`` without separators.
    Canvas renames a re-uploaded file ``classification-1.ipynb``, ``classification-2.ipynb``,
    ...; such names map back to the assignment's notebook.  Canvas puts only the latest
    submission in the zip; should one student still have several files for one notebook, the
    highest upload id (the second number, which Canvas allots in increasing order), then the
    highest ``-N``, wins.
``<student>_<file>`` or ``<student>/<file>``
    plain names; a file in a folder whose name is the assignment's notebook belongs to the
    student the folder is named for.

Only the assignment's notebooks (the ``.ipynb`` files in ``solutions/<assignment>/``) are
imported, also as ``<notebook>-N.ipynb`` or ``<notebook> (N).ipynb`` copies.  A roster CSV
(:func:`read_roster`) maps Canvas user ids and Moodle participant ids or full names to the
course's student ids; students it does not list are reported and not imported.  Without a
roster, a student's id is the LMS name made safe for a folder (``José García`` becomes
``jose-garcia``), with ``-<LMS id>`` appended when two students share a name.

For every imported student, ``grading/submitted/<student>/<assignment>/collect.json`` records
where each notebook came from and whether it was late (see :data:`RECORD`).  Every file that
is not imported is listed in :attr:`CollectResult.skipped` with the reason.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .course import SOURCE_DIR, SUBMITTED_DIR

MAX_FILE = 20 * 1024**2
#: Written next to the notebooks of each imported submission: ``{"assignment", "source",
#: "late", "files": {notebook: {"member", "format", "lms_id", "lms_name", "late"}}}``.
RECORD = "collect.json"
#: The columns of a roster; only ``student_id`` is required.
ROSTER_COLUMNS = ("student_id", "canvas_id", "moodle_id", "name")

_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")
_MOODLE = re.compile(
    r"(?:^|/)(?P<name>[^/]+?)_(?P<lms_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$"
)
_ATTEMPT = re.compile(r"^(?P<student>[A-Za-z0-9.-]+)_attempt_(?P<stamp>[0-9-]+)_(?P<file>.+)$")
_CANVAS = re.compile(
    r"^(?P<name>.+?)(?P<late>_(?i:late))?_(?P<lms_id>\d+)_(?P<upload>\d+)_(?P<file>.+)$"
)
_PLAIN = re.compile(r"^(?P<student>[A-Za-z0-9.-]+)_(?P<file>.+)$")
_COPY = re.compile(r"^(?P<stem>.+?)(?:-(?P<dash>\d+)| \((?P<paren>\d+)\))\.ipynb$")


@dataclass(frozen=True)
class Skipped:
    """A file of the source that was not imported, and why."""

    member: str
    reason: str


@dataclass
class CollectResult:
    """What :func:`collect` did.

    Attributes:
        imported: student id -> the notebooks written for them, sorted.
        late: students whose imported notebook was marked late by the LMS (Canvas).
        skipped: every file not imported, in the order found.
        named_by_lms: students whose id is a sanitized LMS name, as no roster was given.
    """

    imported: dict[str, list[str]] = field(default_factory=dict)
    late: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    named_by_lms: list[str] = field(default_factory=list)

    def report(self) -> str:
        """The result for a person: one line per student, late ones, every skipped file."""
        lines = [f"imported {len(self.imported)} student(s):"]
        for student, notebooks in self.imported.items():
            late = " (LATE)" if student in self.late else ""
            lines.append(f"  {student}: {', '.join(notebooks)}{late}")
        if self.late:
            lines.append(f"late: {', '.join(self.late)} (recorded in each {RECORD})")
        if self.skipped:
            lines.append(f"not imported ({len(self.skipped)} file(s)):")
            lines.extend(f"  {s.member}: {s.reason}" for s in self.skipped)
        if self.named_by_lms:
            names = ", ".join(self.named_by_lms)
            lines.append(f"note: no --roster given, so these ids are LMS names: {names}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Roster:
    """The course's students and their LMS identities (see :func:`read_roster`)."""

    students: frozenset[str]
    canvas: dict[str, str]
    moodle: dict[str, str]
    names: dict[str, str]


@dataclass(frozen=True)
class _Upload:
    """One notebook of one student as the source names it, before choosing attempts."""

    member: str
    data: bytes
    origin: str  # "canvas", "moodle" or "named" (the course's own student ids)
    lms_id: str
    lms_name: str
    notebook: str
    rank: tuple[str, int, int]  # (timestamp, Canvas upload id, copy number): higher is later
    late: bool = False

    @property
    def identity(self) -> tuple[str, str]:
        return self.origin, self.lms_id


def read_roster(path: Path) -> Roster:
    """Read a roster CSV with a header row and the columns :data:`ROSTER_COLUMNS`.

    ``student_id`` (required) is the course's id, used for folder names; ``canvas_id`` is the
    Canvas user id (the first number in Canvas's file names); ``moodle_id`` the Moodle
    participant id (the number in Moodle's folder names, which differs between
    assignments); ``name`` the full name as Moodle shows it, matched ignoring case, accents,
    spaces and punctuation when ``moodle_id`` is empty or unknown.  Empty cells are allowed,
    other columns ignored.

    Raises:
        ValueError: no ``student_id`` column, an unsafe student id, or an LMS id listed twice.
    """
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        rows = list(reader)
    if "student_id" not in (reader.fieldnames or []):
        raise ValueError(f"no student_id column (columns: {', '.join(ROSTER_COLUMNS)})")
    students, canvas, moodle = set(), {}, {}
    names: dict[str, list[str]] = {}
    for line, row in enumerate(rows, start=2):
        student = (row.get("student_id") or "").strip()
        if not _SAFE.match(student) or student.startswith("."):
            raise ValueError(f"line {line}: student_id {student!r} is not a safe folder name")
        students.add(student)
        for column, index in (("canvas_id", canvas), ("moodle_id", moodle)):
            lms_id = (row.get(column) or "").strip()
            if lms_id and index.setdefault(lms_id, student) != student:
                raise ValueError(f"line {line}: {column} {lms_id} is listed twice")
        if _name_key(row.get("name") or ""):
            names.setdefault(_name_key(row["name"]), []).append(student)
    unique_names = {name: ids[0] for name, ids in names.items() if len(ids) == 1}
    return Roster(frozenset(students), canvas, moodle, unique_names)


def expected_notebooks(assignment: str) -> list[str]:
    """The file names of the assignment's notebooks, from ``solutions/<assignment>/``."""
    return sorted(path.name for path in (SOURCE_DIR / assignment).glob("*.ipynb"))


def collect(
    assignment: str,
    source: Path,
    roster: Roster | None = None,
    *,
    notebooks: list[str] | None = None,
) -> CollectResult:
    """Copy the latest notebook of each student into ``grading/submitted/<student>/<assignment>/``.

    Args:
        assignment: the assignment's folder name, e.g. ``"a02_classification"``.
        source: a zip archive or a folder downloaded from Canvas or Moodle, or named by student.
        roster: maps LMS ids to student ids (:func:`read_roster`); without it LMS names are used.
        notebooks: the notebooks to import (default: :func:`expected_notebooks`).

    Returns:
        A :class:`CollectResult`; files not imported are in ``skipped`` with the reason.

    Raises:
        zipfile.BadZipFile: ``source`` is a file but not a zip archive.
    """
    notebooks = notebooks if notebooks is not None else expected_notebooks(assignment)
    result = CollectResult()
    uploads = []
    for member, data in _entries(Path(source)):
        upload = data if isinstance(data, str) else _parse(member, data, notebooks)
        if isinstance(upload, str):
            result.skipped.append(Skipped(member, upload))
        else:
            uploads.append(upload)
    students = _student_ids(uploads, roster, result)
    chosen = _latest(uploads, students, result)
    _write(assignment, Path(source).name, chosen, result)
    if roster is None:
        named = {student for (student, _), u in chosen.items() if u.origin != "named"}
        result.named_by_lms = sorted(named)
    return result


def _entries(source: Path) -> Iterator[tuple[str, bytes | str]]:
    """(name inside the source, its bytes or the reason it cannot be read) for every file."""
    too_large = f"larger than {MAX_FILE // 1024**2} MiB"
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            name = path.relative_to(source).as_posix()
            if path.is_symlink():
                yield name, "symbolic link"
            elif path.is_file():
                yield name, too_large if path.stat().st_size > MAX_FILE else path.read_bytes()
        return
    with zipfile.ZipFile(source) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if info.file_size > MAX_FILE:
                yield info.filename, too_large
                continue
            with zf.open(info) as member:
                data = member.read(MAX_FILE + 1)
            yield info.filename, too_large if len(data) > MAX_FILE else data


def _parse(member: str, data: bytes, notebooks: list[str]) -> _Upload | str:
    """The upload a file name describes, or the reason it is not one."""
    parts = re.split(r"[/\\]", member)
    if member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member) or ".." in parts:
        return "unsafe path (absolute or with '..'), ignored"
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return "hidden file or macOS metadata"
    found = (
        _moodle(member, notebooks)
        or _attempt(parts[-1], notebooks)
        or _canvas(parts[-1], notebooks)
        or _plain(parts, notebooks)
    )
    if found is None:
        return "unrecognised name (not Canvas, Moodle, <student>_<file> or <student>/<file>)"
    if isinstance(found, str):
        return found
    return _Upload(member=member, data=data, **found)


def _moodle(member: str, notebooks: list[str]) -> dict | str | None:
    match = _MOODLE.search(member)
    if not match:
        return None
    if match["plugin"] != "file":
        return f"Moodle {match['plugin']} submission, not a notebook file"
    filename = re.split(r"[/\\]", match["rest"])[-1]
    return _fields("moodle", match["lms_id"], match["name"], filename, notebooks)


def _attempt(filename: str, notebooks: list[str]) -> dict | str | None:
    match = _ATTEMPT.match(filename)
    if not match:
        return None
    student = match["student"]
    return _fields("named", student, student, match["file"], notebooks, stamp=match["stamp"])


def _canvas(filename: str, notebooks: list[str]) -> dict | str | None:
    match = _CANVAS.match(filename)
    if not match:
        return None
    fields = _fields("canvas", match["lms_id"], match["name"], match["file"], notebooks)
    if isinstance(fields, dict):
        fields["rank"] = ("", int(match["upload"]), fields["rank"][2])
        fields["late"] = match["late"] is not None
    return fields


def _plain(parts: list[str], notebooks: list[str]) -> dict | str | None:
    """``<folder>/<notebook>`` names the student by the folder, else ``<student>_<file>``."""
    if len(parts) >= 2 and _notebook_for(parts[-1], notebooks):
        return _fields("named", parts[-2], parts[-2], parts[-1], notebooks)
    match = _PLAIN.match(parts[-1])
    if match:
        student = match["student"]
        return _fields("named", student, student, match["file"], notebooks)
    if len(parts) >= 2:
        return _fields("named", parts[-2], parts[-2], parts[-1], notebooks)
    return None


def _fields(
    origin: str, lms_id: str, lms_name: str, filename: str, notebooks: list[str], stamp: str = ""
) -> dict | str:
    """The fields of an upload of ``filename``, or why it is no notebook of the assignment."""
    mapped = _notebook_for(filename, notebooks)
    if mapped is None:
        return f"not a notebook of this assignment (expected {', '.join(notebooks)})"
    if origin == "named" and (not _SAFE.match(lms_id) or lms_id.startswith(".")):
        return f"student id {lms_id!r} is not a safe folder name"
    notebook, copy = mapped
    return {
        "origin": origin,
        "lms_id": lms_id,
        "lms_name": lms_name,
        "notebook": notebook,
        "rank": (stamp, 0, copy),
    }


def _notebook_for(filename: str, notebooks: list[str]) -> tuple[str, int] | None:
    """(the assignment notebook, copy number) a file name stands for, e.g.
    ``classification-2.ipynb`` -> ``("classification.ipynb", 2)``."""
    if filename in notebooks:
        return filename, 0
    match = _COPY.match(filename)
    if match and f"{match['stem']}.ipynb" in notebooks:
        return f"{match['stem']}.ipynb", int(match["dash"] or match["paren"])
    return None


def _name_key(name: str) -> str:
    """A full name for comparison: ASCII letters and digits only, lower case."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_name.lower())


def _folder_name(name: str) -> str:
    """An LMS name as a student id: ``José García`` -> ``jose-garcia``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9.]+", "-", ascii_name.lower()).strip("-.")


def _student_ids(
    uploads: list[_Upload], roster: Roster | None, result: CollectResult
) -> dict[tuple[str, str], str | None]:
    """Each LMS identity's student id, or None (with the reason in ``result.skipped``)."""
    if roster is None:
        return _ids_from_names(uploads)
    students: dict[tuple[str, str], str | None] = {}
    for upload in uploads:
        student = _from_roster(upload, roster)
        students[upload.identity] = student
        if student is None:
            who = {"canvas": "Canvas user ", "moodle": "Moodle participant "}.get(upload.origin)
            who = f"{who}{upload.lms_id} ({upload.lms_name})" if who else upload.lms_id
            result.skipped.append(Skipped(upload.member, f"unknown student: {who} not in roster"))
    return students


def _from_roster(upload: _Upload, roster: Roster) -> str | None:
    if upload.origin == "canvas":
        return roster.canvas.get(upload.lms_id)
    if upload.origin == "moodle":
        return roster.moodle.get(upload.lms_id) or roster.names.get(_name_key(upload.lms_name))
    return upload.lms_id if upload.lms_id in roster.students else None


def _ids_from_names(uploads: list[_Upload]) -> dict[tuple[str, str], str | None]:
    """Without a roster: LMS names made safe, with ``-<LMS id>`` where two students clash."""
    wanted = {
        u.identity: u.lms_id if u.origin == "named" else _folder_name(u.lms_name) for u in uploads
    }
    owners: dict[str, set[tuple[str, str]]] = {}
    for identity, student in wanted.items():
        owners.setdefault(student, set()).add(identity)
    students: dict[tuple[str, str], str | None] = {}
    for (origin, lms_id), student in wanted.items():
        if origin != "named" and (len(owners[student]) > 1 or not student):
            student = f"{student}-{lms_id}".lstrip("-")
        students[origin, lms_id] = student
    return students


def _latest(
    uploads: list[_Upload], students: dict[tuple[str, str], str | None], result: CollectResult
) -> dict[tuple[str, str], _Upload]:
    """The latest upload per (student, notebook); later in the source wins a tie."""
    chosen: dict[tuple[str, str], _Upload] = {}
    for upload in uploads:
        student = students[upload.identity]
        if student is None:
            continue
        key = (student, upload.notebook)
        previous = chosen.get(key)
        if previous is not None and previous.rank > upload.rank:
            older, chosen[key] = upload, previous
        else:
            older, chosen[key] = previous, upload
        if older is not None:
            reason = f"older attempt, superseded by {chosen[key].member}"
            result.skipped.append(Skipped(older.member, reason))
    return chosen


def _write(
    assignment: str, source: str, chosen: dict[tuple[str, str], _Upload], result: CollectResult
) -> None:
    """Write the notebooks, ``timestamp.txt`` when known, and the :data:`RECORD` per student."""
    records: dict[str, dict] = {}
    for (student, notebook), upload in sorted(chosen.items()):
        target = SUBMITTED_DIR / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        (target / notebook).write_bytes(upload.data)
        if upload.rank[0]:
            (target / "timestamp.txt").write_text(upload.rank[0] + "\n")
        record = records.setdefault(
            student, {"assignment": assignment, "source": source, "late": False, "files": {}}
        )
        record["late"] = record["late"] or upload.late
        record["files"][notebook] = {
            "member": upload.member,
            "format": upload.origin,
            "lms_id": upload.lms_id,
            "lms_name": upload.lms_name,
            "late": upload.late,
        }
        result.imported.setdefault(student, []).append(notebook)
    for student, record in records.items():
        path = SUBMITTED_DIR / student / assignment / RECORD
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        if record["late"]:
            result.late.append(student)
