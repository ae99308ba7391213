"""What nbgrader's formgrader shows of a submission graded by ``python -m grading autograde``.

The formgrader renders ``autograded/<student>/<assignment>/<notebook>.ipynb`` and puts the
gradebook's score next to each cell whose ``grade_id`` it knows.  ``autograde`` writes
there, for every notebook of the assignment, the notebook it graded: the instructor's cells
(hidden tests included) with the student's solution cells, the outputs of the sandboxed run
(those :func:`outputs_of` keeps, when the notebook's result carries them), a Markdown cell
under each test cell with the grader's verdict, and a first cell with the score and the flags
(also kept in the notebook's metadata, ``cvloss_grading``).  A submission
that could not be read gets a valid notebook that says why: the formgrader cannot render an
invalid one, and the submitted file stays in ``submitted/``.

Everything the student controls (solution code, outputs, error messages, flags that quote
them) reaches the instructor's browser only as code, as plain-text outputs or inside fenced
code blocks, which the formgrader escapes; outputs that would render as HTML, JavaScript or
SVG are dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

from .notebooks import nbgrader_meta
from .results import NotebookResult, SubmissionResult

#: The outputs of the sandboxed run kept for the formgrader: plain text and raster images.
SAFE_MIME_TYPES = ("text/plain", "image/png", "image/jpeg")
#: The notebook metadata key under which the grader's summary is kept.
METADATA_KEY = "cvloss_grading"


def _fenced(text: str) -> str:
    """``text`` as a fenced code block (rendered escaped, never as Markdown or HTML); what
    UTF-8 cannot encode (a lone surrogate) is shown as an escape."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def _strings(value) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _safe_output(output) -> dict | None:
    """One output of the sandboxed run, reduced to what is safe to render, or None."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    if kind == "stream" and output.get("name") in ("stdout", "stderr"):
        if _strings(output.get("text")):
            return {"output_type": "stream", "name": output["name"], "text": output["text"]}
    elif kind == "error":
        parts = [output.get("ename"), output.get("evalue")]
        if all(isinstance(p, str) for p in parts) and _strings(output.get("traceback")):
            return {
                "output_type": "error",
                "ename": parts[0],
                "evalue": parts[1],
                "traceback": list(output["traceback"]),
            }
    elif kind in ("execute_result", "display_data") and isinstance(output.get("data"), dict):
        data = {k: v for k, v in output["data"].items() if k in SAFE_MIME_TYPES and _strings(v)}
        if data:
            safe = {"output_type": "display_data", "data": data, "metadata": {}}
            return safe
    return None


def outputs_of(executed, graded: nbformat.NotebookNode) -> dict[str, list[dict]]:
    """The safe outputs of the notebook the sandbox executed, by cell index (as a string),
    for the code cells of ``graded`` (the trusted notebook it ran).  The executed notebook
    was written by untrusted code: only its outputs are taken, and nothing at all when its
    cells do not line up with ``graded``'s."""
    cells = executed.get("cells") if isinstance(executed, dict) else None
    if not isinstance(cells, list) or len(cells) != len(graded.cells):
        return {}
    found = {}
    for index, (cell, trusted) in enumerate(zip(cells, graded.cells)):
        if trusted.cell_type != "code" or not isinstance(cell, dict):
            continue
        raw = cell.get("outputs")
        kept = [o for o in map(_safe_output, raw if isinstance(raw, list) else []) if o]
        if kept:
            found[str(index)] = kept
    return found


def _summary(result: SubmissionResult, notebook: NotebookResult | None) -> dict:
    """The grader's summary of one notebook of a submission (the notebook's metadata)."""
    return {
        "student": result.student,
        "assignment": result.assignment,
        "score": notebook.score if notebook else 0.0,
        "max_score": notebook.max_score if notebook else None,
        "submission_score": result.score,
        "submission_max_score": result.max_score,
        "flags": list(result.flags),
        "reason": (notebook.reason if notebook and notebook.reason else result.reason),
    }


def _header(summary: dict) -> nbformat.NotebookNode:
    lines = [
        "# Graded by `python -m grading autograde`",
        "",
        f"Submission score: **{summary['submission_score']:g} / "
        f"{summary['submission_max_score']:g}** (this notebook: {summary['score']:g}). "
        "Each test cell earns its points only if the notebook run (in the sandbox) and the "
        "trusted verification agree that it passes; the verdict is under each test cell. "
        "Hidden tests are shown. The scores next to the cells are the gradebook's.",
    ]
    if summary["reason"]:
        lines += ["", "**Not graded:**", "", _fenced(summary["reason"])]
    if summary["flags"]:
        lines += ["", "**Flags for the instructor:**", "", _fenced("\n".join(summary["flags"]))]
    else:
        lines += ["", "No flags."]
    return nbformat.v4.new_markdown_cell("\n".join(lines), metadata={"deletable": False})


def _verdict(grade_id: str, notebook: NotebookResult | None, reason: str):
    """The Markdown cell that follows a test cell: the grader's verdict on it."""
    cell = next((c for c in notebook.cells if c.grade_id == grade_id), None) if notebook else None
    if cell is None:
        text = f"**Grader:** `{grade_id}` was not graded."
        if reason:
            text += "\n\n" + _fenced(reason)
    else:
        text = (
            f"**Grader:** `{grade_id}` {cell.status}, {cell.points:g} / {cell.max_points:g} "
            f"point(s) (notebook run: {cell.notebook or 'not run'}; trusted verification: "
            f"{'passed' if cell.verified else 'failed' if cell.verified is False else '-'})."
        )
        if cell.message:
            text += "\n\n" + _fenced(cell.message)
    return nbformat.v4.new_markdown_cell(text)


def review_notebook(
    graded: nbformat.NotebookNode,
    result: SubmissionResult,
    notebook: NotebookResult | None,
    outputs: dict[str, list[dict]] | None = None,
) -> nbformat.NotebookNode:
    """The notebook the formgrader shows: ``graded`` (the instructor's notebook with the
    student's solution cells) with the run's ``outputs`` (from :func:`outputs_of`), the
    grader's verdict under each test cell and its summary on top."""
    summary = _summary(result, notebook)
    cells = [_header(summary)]
    for index, cell in enumerate(graded.cells):
        if cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict(o) for o in (outputs or {}).get(str(index), [])]
        cells.append(cell)
        meta = nbgrader_meta(cell)
        if meta.get("grade") and cell.cell_type == "code":
            cells.append(_verdict(meta["grade_id"], notebook, summary["reason"]))
    review = nbformat.v4.new_notebook(cells=cells, metadata=dict(graded.metadata))
    review.metadata[METADATA_KEY] = summary
    nbformat.validate(review)
    return review


def placeholder_notebook(
    result: SubmissionResult, notebook: NotebookResult | None, problem: str
) -> nbformat.NotebookNode:
    """A valid notebook that says why the graded notebook could not be shown."""
    summary = _summary(result, notebook)
    summary["reason"] = "; ".join(filter(None, [summary["reason"], problem]))
    review = nbformat.v4.new_notebook(cells=[_header(summary)])
    review.metadata[METADATA_KEY] = summary
    return review


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write ``nb`` to ``path`` whole or not at all (a temporary file, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        nbformat.write(nb, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
