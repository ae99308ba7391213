"""``feedback``: one HTML page per student and notebook, built from results.json.

The page lists every test cell with its points, whether it passed and the teaching
message of ``cvloss_ref.testing`` (from the trusted verification), and the student's own
solution code, with a note when the grader cut what the code printed.  It never shows the
source of a test cell: hidden tests stay hidden (nbgrader's own feedback shows them,
nbgrader issues 917 and 1363).  Everything is HTML-escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

import nbformat

from .course import AUTOGRADED_DIR, FEEDBACK_DIR
from .notebooks import nbgrader_meta, source_notebooks
from .results import OUTPUT_TRUNCATED, NotebookResult, SubmissionResult

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
.passed { color: #1a7f37; } .failed { color: #cf222e; } .note { color: #9a6700; }
pre { background: #f6f8fa; padding: .5rem; white-space: pre-wrap; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _truncation_note(result: SubmissionResult) -> list[str]:
    """The note that tells the student their output was cut, with the grader's flags about
    it (none: no note)."""
    flags = [f for f in result.flags if f.startswith(OUTPUT_TRUNCATED)]
    if not flags:
        return []
    items = "".join(f"<li>{_e(flag)}</li>" for flag in flags)
    return [
        "<p class=note>Your code printed more than the grader keeps: the rest of its output "
        "was dropped (this costs no points).</p>",
        f"<ul class=note>{items}</ul>",
    ]


def render(result: SubmissionResult, notebook: str, student_code: dict[str, str]) -> str:
    graded = result.notebooks.get(notebook) or NotebookResult(max_score=0.0)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(result.assignment)}: {_e(notebook)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(result.assignment)} / {_e(notebook)}.ipynb</h1>",
        f"<p>Student: <b>{_e(result.student)}</b>. Score: <b>{graded.score:g}</b> "
        f"of {graded.max_score:g}.</p>",
    ]
    if graded.reason:
        parts.append(f"<p class=failed>Not graded: {_e(graded.reason)}</p>")
    parts += _truncation_note(result)
    parts.append("<table><tr><th>test</th><th>points</th><th>result</th></tr>")
    for cell in graded.cells:
        kind = " (hidden test)" if cell.hidden else ""
        status = "passed" if cell.points >= cell.max_points > 0 else "failed"
        parts.append(
            f"<tr><td><code>{_e(cell.grade_id)}</code>{_e(kind)}<br>"
            f"{_e(cell.description)}</td>"
            f"<td>{cell.points:g} / {cell.max_points:g}</td>"
            f"<td class={status}>{_e(status)}"
        )
        if cell.message:
            parts.append(f"<pre>{_e(cell.message)}</pre>")
        parts.append("</td></tr>")
    parts.append("</table>")
    if student_code:
        parts.append("<h2>Your solution cells</h2>")
        for grade_id, code in student_code.items():
            parts.append(f"<h3><code>{_e(grade_id)}</code></h3><pre>{_e(code)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _student_code(path: Path, solution_ids: list[str]) -> dict[str, str]:
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:
        return {}
    code = {}
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in solution_ids and grade_id not in code:
            code[grade_id] = str(cell.get("source", ""))[:20000]
    return code


def feedback(assignment: str) -> list[Path]:
    written = []
    sources = source_notebooks(assignment)
    if not AUTOGRADED_DIR.is_dir():
        return written
    for student_dir in sorted(AUTOGRADED_DIR.iterdir()):
        results_path = student_dir / assignment / "results.json"
        if not results_path.is_file():
            continue
        result = SubmissionResult.load(results_path)
        target = FEEDBACK_DIR / student_dir.name / assignment
        target.mkdir(parents=True, exist_ok=True)
        for source in sources:
            code = _student_code(
                student_dir / assignment / f"{source.name}.ipynb", source.solution_ids
            )
            page = target / f"{source.name}.html"
            page.write_text(render(result, source.name, code), encoding="utf-8")
            written.append(page)
    return written
