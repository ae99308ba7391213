"""``python -m grading collect`` on archives laid out as Canvas and Moodle download them.

Canvas "Download Submissions": a flat zip of ``<name>[_LATE]_<user id>_<upload id>_<file>``,
re-uploads renamed ``<file>-1.ipynb``.  Moodle "Download all submissions": one folder per
student, ``Full Name_<participant id>_assignsubmission_file_/<file>``, online text in
``..._assignsubmission_onlinetext_/``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from grading import cli, collect

ASSIGNMENT = "a02_classification"
NOTEBOOK = "classification.ipynb"
EXPECTED = f"not a notebook of this assignment (expected {NOTEBOOK})"
UNRECOGNISED = "unrecognised name (not Canvas, Moodle, <student>_<file> or <student>/<file>)"
UNSAFE = "unsafe path (absolute or with '..'), ignored"


@pytest.fixture
def submitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "submitted"
    monkeypatch.setattr(collect, "SUBMITTED_DIR", folder)
    return folder


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def _roster(path: Path, rows: list[str]) -> collect.Roster:
    path.write_text("\n".join(["student_id,canvas_id,moodle_id,name", *rows]) + "\n")
    return collect.read_roster(path)


def _written(submitted: Path) -> dict[str, str]:
    """Every notebook written under submitted/, by its path relative to it."""
    return {
        p.relative_to(submitted).as_posix(): p.read_text()
        for p in sorted(submitted.rglob("*.ipynb"))
    }


def _skipped(result: collect.CollectResult) -> dict[str, str]:
    assert len({s.member for s in result.skipped}) == len(result.skipped), result.skipped
    return {s.member: s.reason for s in result.skipped}


CANVAS = {
    # two attempts of one student: the higher upload id wins, although its name has "-1"
    "smithjohn_1001_5001_classification.ipynb": "john first",
    "smithjohn_1001_5007_classification-1.ipynb": "john resubmitted",
    "smithjohn_1001_5002_notes.pdf": "%PDF",
    "doejane_LATE_1002_5003_classification.ipynb": "jane late",
    # the same upload id twice: the higher -N wins
    "leeanna_1003_5004_classification-2.ipynb": "anna copy 2",
    "leeanna_1003_5004_classification-1.ipynb": "anna copy 1",
    # the upload id decides before -N (the newer upload listed first)
    "kimlee_1004_5008_classification.ipynb": "kim newer",
    "kimlee_1004_5005_classification-1.ipynb": "kim older",
    "readme.txt": "instructions",
    "../doejane_1002_5009_classification.ipynb": "escape",
    "/tmp/doejane_1002_5010_classification.ipynb": "absolute",
    "__MACOSX/._smithjohn_1001_5007_classification-1.ipynb": "resource fork",
}


def test_canvas_latest_attempt_wins_and_copies_map_to_the_notebook(tmp_path, submitted):
    result = collect.collect(ASSIGNMENT, _zip(tmp_path / "submissions.zip", CANVAS))
    students = ("doejane", "kimlee", "leeanna", "smithjohn")
    assert result.imported == {n: [NOTEBOOK] for n in students}
    assert _written(submitted) == {
        f"doejane/{ASSIGNMENT}/{NOTEBOOK}": "jane late",
        f"kimlee/{ASSIGNMENT}/{NOTEBOOK}": "kim newer",
        f"leeanna/{ASSIGNMENT}/{NOTEBOOK}": "anna copy 2",
        f"smithjohn/{ASSIGNMENT}/{NOTEBOOK}": "john resubmitted",
    }
    assert not (tmp_path / "doejane_1002_5009_classification.ipynb").exists()


def test_canvas_reports_every_file_not_imported_with_its_reason(tmp_path, submitted):
    result = collect.collect(ASSIGNMENT, _zip(tmp_path / "submissions.zip", CANVAS))
    assert _skipped(result) == {
        "smithjohn_1001_5001_classification.ipynb": "older attempt, superseded by "
        "smithjohn_1001_5007_classification-1.ipynb",
        "smithjohn_1001_5002_notes.pdf": EXPECTED,
        "leeanna_1003_5004_classification-1.ipynb": "older attempt, superseded by "
        "leeanna_1003_5004_classification-2.ipynb",
        "kimlee_1004_5005_classification-1.ipynb": "older attempt, superseded by "
        "kimlee_1004_5008_classification.ipynb",
        "readme.txt": UNRECOGNISED,
        "../doejane_1002_5009_classification.ipynb": UNSAFE,
        "/tmp/doejane_1002_5010_classification.ipynb": UNSAFE,
        "__MACOSX/._smithjohn_1001_5007_classification-1.ipynb": "hidden file or macOS metadata",
    }


def test_canvas_late_submissions_are_flagged_and_recorded(tmp_path, submitted):
    result = collect.collect(ASSIGNMENT, _zip(tmp_path / "submissions.zip", CANVAS))
    assert result.late == ["doejane"]
    record = json.loads((submitted / "doejane" / ASSIGNMENT / collect.RECORD).read_text())
    assert record == {
        "assignment": ASSIGNMENT,
        "source": "submissions.zip",
        "late": True,
        "files": {
            NOTEBOOK: {
                "member": "doejane_LATE_1002_5003_classification.ipynb",
                "format": "canvas",
                "lms_id": "1002",
                "lms_name": "doejane",
                "late": True,
            }
        },
    }
    on_time = json.loads((submitted / "smithjohn" / ASSIGNMENT / collect.RECORD).read_text())
    assert on_time["late"] is False


def test_canvas_without_roster_names_students_by_their_lms_name(tmp_path, submitted):
    result = collect.collect(ASSIGNMENT, _zip(tmp_path / "submissions.zip", CANVAS))
    assert result.named_by_lms == ["doejane", "kimlee", "leeanna", "smithjohn"]
    assert "note: no --roster given" in result.report()


def test_canvas_roster_maps_user_ids_and_reports_unknown_students(tmp_path, submitted):
    roster = _roster(tmp_path / "roster.csv", ["s001,1001,,John Smith", "s002,1002,,Jane Doe"])
    result = collect.collect(ASSIGNMENT, _zip(tmp_path / "submissions.zip", CANVAS), roster)
    assert result.imported == {"s001": [NOTEBOOK], "s002": [NOTEBOOK]}
    assert result.late == ["s002"]
    assert result.named_by_lms == []
    assert _written(submitted) == {
        f"s001/{ASSIGNMENT}/{NOTEBOOK}": "john resubmitted",
        f"s002/{ASSIGNMENT}/{NOTEBOOK}": "jane late",
    }
    unknown = "unknown student: Canvas user 1003 (leeanna) not in roster"
    skipped = _skipped(result)
    assert skipped["leeanna_1003_5004_classification-2.ipynb"] == unknown
    assert skipped["leeanna_1003_5004_classification-1.ipynb"] == unknown


MOODLE = {
    "Anna Lee_2001_assignsubmission_file_/classification.ipynb": "anna",
    "Anna Lee_2001_assignsubmission_file_/notes.txt": "notes",
    "José García_2002_assignsubmission_file_/work/classification.ipynb": "jose",
    "José García_2002_assignsubmission_onlinetext_/onlinetext.html": "<p>done</p>",
    "Mark Stranger_2003_assignsubmission_file_/classification.ipynb": "mark",
}


def test_moodle_roster_maps_participant_ids_and_names(tmp_path, submitted):
    roster = _roster(
        tmp_path / "roster.csv", ["s003,,2001,Anna Lee", "s004,,,Jose Garcia", "s005,,,Anna Lee"]
    )
    archive = _zip(tmp_path / "course-assignment-42.zip", MOODLE)
    result = collect.collect(ASSIGNMENT, archive, roster)
    assert result.imported == {"s003": [NOTEBOOK], "s004": [NOTEBOOK]}
    assert result.late == []
    assert _written(submitted) == {
        f"s003/{ASSIGNMENT}/{NOTEBOOK}": "anna",
        f"s004/{ASSIGNMENT}/{NOTEBOOK}": "jose",
    }
    assert _skipped(result) == {
        "Anna Lee_2001_assignsubmission_file_/notes.txt": EXPECTED,
        "José García_2002_assignsubmission_onlinetext_/onlinetext.html": "Moodle onlinetext "
        "submission, not a notebook file",
        "Mark Stranger_2003_assignsubmission_file_/classification.ipynb": "unknown student: "
        "Moodle participant 2003 (Mark Stranger) not in roster",
    }


def test_moodle_without_roster_uses_safe_names_and_tells_apart_namesakes(tmp_path, submitted):
    archive = _zip(
        tmp_path / "moodle.zip",
        {
            # "Download submissions in folders" off: the file name follows the prefix
            "José García_2002_assignsubmission_file_classification.ipynb": "jose",
            "Sam Lee_3001_assignsubmission_file_/classification.ipynb": "sam one",
            "Sam Lee_3002_assignsubmission_file_/classification.ipynb": "sam two",
        },
    )
    result = collect.collect(ASSIGNMENT, archive)
    assert result.named_by_lms == ["jose-garcia", "sam-lee-3001", "sam-lee-3002"]
    assert _written(submitted) == {
        f"jose-garcia/{ASSIGNMENT}/{NOTEBOOK}": "jose",
        f"sam-lee-3001/{ASSIGNMENT}/{NOTEBOOK}": "sam one",
        f"sam-lee-3002/{ASSIGNMENT}/{NOTEBOOK}": "sam two",
    }
    assert result.skipped == []


def test_course_names_keep_working_from_a_folder(tmp_path, submitted):
    source = tmp_path / "downloads"
    files = {
        "alice_classification.ipynb": "alice",
        "bob_attempt_2024-01-02-10-00-00_classification.ipynb": "bob new",
        "bob_attempt_2024-01-01-10-00-00_classification.ipynb": "bob old",
        "carol/classification.ipynb": "carol",
        "carol/.ipynb_checkpoints/classification-checkpoint.ipynb": "checkpoint",
        "dave_regression.ipynb": "wrong assignment",
    }
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    result = collect.collect(ASSIGNMENT, source)
    assert _written(submitted) == {
        f"alice/{ASSIGNMENT}/{NOTEBOOK}": "alice",
        f"bob/{ASSIGNMENT}/{NOTEBOOK}": "bob new",
        f"carol/{ASSIGNMENT}/{NOTEBOOK}": "carol",
    }
    assert (submitted / "bob" / ASSIGNMENT / "timestamp.txt").read_text() == (
        "2024-01-02-10-00-00\n"
    )
    assert result.named_by_lms == []
    assert _skipped(result) == {
        "bob_attempt_2024-01-01-10-00-00_classification.ipynb": "older attempt, superseded by "
        "bob_attempt_2024-01-02-10-00-00_classification.ipynb",
        "carol/.ipynb_checkpoints/classification-checkpoint.ipynb": "hidden file or macOS metadata",
        "dave_regression.ipynb": EXPECTED,
    }


def test_course_names_not_in_the_roster_are_reported(tmp_path, submitted):
    roster = _roster(tmp_path / "roster.csv", ["alice,,,"])
    archive = _zip(
        tmp_path / "a.zip",
        {"alice/classification.ipynb": "alice", "eve_classification.ipynb": "eve"},
    )
    result = collect.collect(ASSIGNMENT, archive, roster)
    assert result.imported == {"alice": [NOTEBOOK]}
    assert _skipped(result) == {"eve_classification.ipynb": "unknown student: eve not in roster"}


def test_files_over_the_size_limit_are_reported(tmp_path, submitted, monkeypatch):
    monkeypatch.setattr(collect, "MAX_FILE", 5)
    archive = _zip(tmp_path / "a.zip", {"alice_classification.ipynb": "more than five bytes"})
    result = collect.collect(ASSIGNMENT, archive)
    assert result.imported == {}
    assert _skipped(result) == {"alice_classification.ipynb": "larger than 0 MiB"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,canvas_id\ns1,1\n", "no student_id column"),
        ("student_id,canvas_id\ns1,1\ns2,1\n", "line 3: canvas_id 1 is listed twice"),
        ("student_id\n../root\n", "line 2: student_id '../root' is not a safe folder name"),
    ],
)
def test_invalid_roster(tmp_path, text, message):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        collect.read_roster(path)


def test_cli_collect_prints_the_report(tmp_path, submitted, capsys):
    archive = _zip(tmp_path / "submissions.zip", CANVAS)
    (tmp_path / "roster.csv").write_text("student_id,canvas_id\ns001,1001\ns002,1002\n")
    code = cli.main(["collect", ASSIGNMENT, str(archive), "--roster", str(tmp_path / "roster.csv")])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "imported 2 student(s):",
        f"  s001: {NOTEBOOK}",
        f"  s002: {NOTEBOOK} (LATE)",
        f"late: s002 (recorded in each {collect.RECORD})",
    ]
    assert lines[4] == "not imported (10 file(s)):"
    assert f"  readme.txt: {UNRECOGNISED}" in lines
    assert (
        "  leeanna_1003_5004_classification-2.ipynb: unknown student: "
        "Canvas user 1003 (leeanna) not in roster"
    ) in lines


def test_cli_collect_fails_when_nothing_is_imported(tmp_path, submitted, capsys):
    archive = _zip(tmp_path / "junk.zip", {"readme.txt": "x"})
    assert cli.main(["collect", ASSIGNMENT, str(archive)]) == 1
    out, err = capsys.readouterr()
    assert f"  readme.txt: {UNRECOGNISED}" in out.splitlines()
    assert err == f"error: no submissions imported from {archive}\n"
    assert not submitted.exists()


def test_cli_collect_rejects_a_bad_roster(tmp_path, submitted, capsys):
    archive = _zip(tmp_path / "submissions.zip", CANVAS)
    (tmp_path / "roster.csv").write_text("id\ns1\n")
    assert (
        cli.main(["collect", ASSIGNMENT, str(archive), "--roster", str(tmp_path / "roster.csv")])
        == 1
    )
    assert "cannot read roster" in capsys.readouterr().err
    assert not submitted.exists()
