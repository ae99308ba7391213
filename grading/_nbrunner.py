"""Execute one graded notebook inside the sandbox (run as a script; untrusted territory).

Reads ``job.json`` and ``graded.ipynb`` from the current directory and writes
``result.json`` after every cell (so that a run killed at its time limit still leaves
what it found).  For every test cell it records the kernel's ``execute_reply`` status,
not the displayed traceback (replacing IPython's traceback display changes nothing), and
a short error text.  A kernel that dies is restarted: the cells that had succeeded
before are run again and grading goes on with the next test cell.  After a timeout the
other test cells of the same function are skipped.  The executed notebook is written to
``executed.ipynb`` every :data:`NOTEBOOK_SAVE_S` seconds and at the end (the grader takes
only its outputs, see :func:`grading.formgrader.outputs_of`).  The kernel is killed, not
shut down gracefully, when the run ends or restarts it.

Output is truncated, never fatal: the kernel drops, cheaply, what a cell prints beyond
:data:`CELL_OUTPUT_CHARS` (so that a flood neither slows the cell into its time limit nor
fills memory), and this runner keeps :data:`OUTPUT_CAP` characters of output per notebook;
a cell whose output was cut ends with :data:`TRUNCATED_NOTE`, and ``result.json`` says
which cells were cut (``output_truncated``, ``truncated_cells``) and how much was dropped
(``output_dropped``, in characters, of what reached this runner).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

# jsonschema (under nbformat) imports rfc3987_syntax, when installed, for its IRI format
# checks, and that builds a parser at import: about 1.1 s of every notebook run, for a
# check that the notebook schema never asks for.
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402

OUTPUT_CAP = 200_000  # characters of output kept per notebook
#: Seconds between two writes of the executed notebook (``result.json``: every cell).
NOTEBOOK_SAVE_S = 2.0
#: Characters a cell may print (stdout and stderr) before the kernel drops the rest (a
#: fraction of the notebook's, so that one flood leaves room for the other cells' output).
CELL_OUTPUT_CHARS = OUTPUT_CAP // 4
#: What a cell whose output was cut shows last (the kernel's note and this runner's).
TRUNCATED_NOTE = "[output truncated by the grader: the rest of this cell's output was dropped]"
#: The file, next to this script, of the code that caps the output in the kernel.
KERNEL_CAP_FILE = "_output_cap.py"
#: Copied next to this script by the grader (``grading/_lazy_dynamo.py``) and run in the
#: kernel at start-up: a check on meta tensors then does not import Dynamo (1.4 s).
LAZY_DYNAMO_FILE = "_lazy_dynamo.py"

#: Run in the kernel at start-up (IPython's ``exec_files``): around each cell, wraps
#: ``write`` of the kernel's stdout and stderr (outermost, so that IPython's own copy of
#: the output, kept in memory for its history, gets no more either) so that what the cell
#: prints beyond a budget is dropped where it is printed, with a note, instead of being
#: sent to this runner.
_KERNEL_CAP_CODE = """
def _cvloss_cap_output(limit, note):
    import sys

    left = [limit]  # characters this cell may still print; -1 once it was cut

    def capped(write):
        def capped_write(text):
            if not isinstance(text, str) or len(text) <= left[0]:
                left[0] -= len(text) if isinstance(text, str) else 0
                return write(text)
            if left[0] >= 0:
                write(text[: left[0]] + "\\n" + note + "\\n")
                left[0] = -1
            return len(text)

        capped_write.cvloss_inner = write
        return capped_write

    def wrap(*args, **kwargs):
        left[0] = limit
        for stream in (sys.stdout, sys.stderr):
            if not hasattr(stream.write, "cvloss_inner"):
                stream.write = capped(stream.write)

    def unwrap(*args, **kwargs):
        for stream in (sys.stdout, sys.stderr):
            inner = getattr(stream.write, "cvloss_inner", None)
            if inner is not None:
                stream.write = inner

    get_ipython().events.register("pre_run_cell", wrap)
    get_ipython().events.register("post_run_cell", unwrap)


_cvloss_cap_output(LIMIT, NOTE)
del _cvloss_cap_output
"""


def _write_kernel_cap() -> str:
    """Write the kernel's output cap (:data:`_KERNEL_CAP_CODE`) next to this script; its
    absolute path."""
    code = _KERNEL_CAP_CODE.replace("LIMIT", str(CELL_OUTPUT_CHARS))
    code = code.replace("NOTE", repr(TRUNCATED_NOTE))
    path = os.path.abspath(KERNEL_CAP_FILE)
    with open(path, "w", encoding="utf-8") as file:
        file.write(code)
    return path


@dataclass
class _OutputBudget:
    """The output this run keeps, over every kernel (it outlives restarts)."""

    limit: int = OUTPUT_CAP
    kept: int = 0  # characters kept
    dropped: int = 0  # characters that reached this runner and were dropped
    cells: set[int] = field(default_factory=set)  # indices of the cells whose output was cut
    noted: set[int] = field(default_factory=set)  # those whose kept output ends with the note

    @property
    def left(self) -> int:
        return max(0, self.limit - self.kept)


def _size(content: dict) -> int:
    """The characters an output message counts for: its text for a stream, else its JSON."""
    text = content.get("text")
    if isinstance(text, str):
        return len(text)
    return len(json.dumps(content, default=str))


class _Client(NotebookClient):
    last_reply: dict | None = None
    budget: _OutputBudget

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        self.last_reply = exec_reply

    def run(self, cell, cell_index: int) -> None:
        """Execute the cell (its outputs start empty: a cut one gets its note again)."""
        self.budget.noted.discard(cell_index)
        self.execute_cell(cell, cell_index)

    def _cut(self, outs, cell_index: int, dropped: int) -> None:
        """Record that ``dropped`` characters of the cell's output were dropped, and end
        its outputs with the note (once per cell)."""
        self.budget.dropped += dropped
        self.budget.cells.add(cell_index)
        if cell_index not in self.budget.noted:
            self.budget.noted.add(cell_index)
            note = nbformat.v4.new_output("stream", name="stderr", text=TRUNCATED_NOTE + "\n")
            outs.append(note)

    def _keep(self, outs, msg, display_id, cell_index, size: int):
        """Keep an output of ``size`` characters (its stream text may end with the
        kernel's note: then the kernel cut the cell)."""
        self.budget.kept += size
        if TRUNCATED_NOTE in str(msg["content"].get("text", "")):
            self.budget.cells.add(cell_index)
            self.budget.noted.add(cell_index)
        return super().output(outs, msg, display_id, cell_index)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = _size(content)
        if size <= self.budget.left:
            return self._keep(outs, msg, display_id, cell_index, size)
        out = None
        if msg.get("msg_type") == "stream" and self.budget.left:  # keep its beginning
            kept = self.budget.left
            content["text"] = content["text"][:kept]
            out = self._keep(outs, msg, display_id, cell_index, kept)
            size -= kept
        self._cut(outs, cell_index, size)
        return out

    def _update_display_id(self, display_id, msg):
        """A display updated with more than the budget left is not updated."""
        size = _size(msg.get("content", {}))
        if size > self.budget.left:
            self.budget.dropped += size
            return None
        self.budget.kept += size
        return super()._update_display_id(display_id, msg)


def _short(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def _record_output(result: dict, budget: _OutputBudget, nb) -> None:
    """What was cut, in ``result``: whether, which cells (by grade_id, else ``cell N``)
    and how many characters were dropped here."""
    result["output_truncated"] = bool(budget.cells)
    result["truncated_cells"] = [
        nb.cells[index].get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index}"
        for index in sorted(budget.cells)
    ]
    result["output_dropped"] = budget.dropped


def main() -> None:
    job = json.loads(open("job.json", encoding="utf-8").read())
    nb = nbformat.read("graded.ipynb", as_version=4)
    timeout = float(job["timeout"])
    tests: dict = job["tests"]  # grade_id -> function
    result = {"cells": {}, "restarts": 0, "output_truncated": False, "finished": False}
    budget = _OutputBudget()
    kernel_cap = _write_kernel_cap()

    notebook_saved = [-math.inf]  # when executed.ipynb was last written

    def save(final: bool = False) -> None:
        with open("result.tmp", "w", encoding="utf-8") as file:
            json.dump(result, file)
        os.replace("result.tmp", "result.json")
        # The executed notebook (validated and serialised whole: about 8 ms for an
        # assignment) at most every NOTEBOOK_SAVE_S, and at the end: a run killed at its
        # time limit loses at most that much of its outputs, never its results.
        if final or time.monotonic() - notebook_saved[0] >= NOTEBOOK_SAVE_S:
            nbformat.write(nb, "executed.tmp")
            os.replace("executed.tmp", "executed.ipynb")
            notebook_saved[0] = time.monotonic()

    succeeded: list[int] = []  # indices of non-test code cells that ran without error
    timed_out: set[str] = set()
    client = None
    context = None

    def start():
        nonlocal client, context
        client = _Client(
            nb,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=True,
            record_timing=False,
            # Killed, not asked to shut down: nothing of the kernel is kept, and a
            # graceful shutdown waits about a second for an idle kernel (five seconds,
            # then a kill, for one stuck in a loop after a timeout).
            shutdown_kernel="immediate",
            extra_arguments=[
                f"--IPKernelApp.exec_files={kernel_cap}",
                f"--IPKernelApp.exec_files={os.path.abspath(LAZY_DYNAMO_FILE)}",
            ],
        )
        client.budget = budget
        context = client.setup_kernel()
        context.__enter__()
        for index in succeeded:
            try:
                client.run(nb.cells[index], index)
            except Exception:
                pass

    def stop():
        nonlocal context
        if context is not None:
            try:
                context.__exit__(None, None, None)
            except Exception:
                pass
            context = None

    start()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        is_test = grade_id in tests
        if is_test and tests[grade_id] in timed_out:
            result["cells"][grade_id] = {
                "status": "skipped",
                "error": f"not run: an earlier test of {tests[grade_id]} timed out",
            }
            save()
            continue
        client.last_reply = None
        status, error = "ok", ""
        try:
            client.run(cell, index)
            reply = (client.last_reply or {}).get("content", {})
            if reply.get("status") != "ok":
                status = "error"
                error = f"{reply.get('ename', 'Error')}: {reply.get('evalue', '')}"
        except CellTimeoutError:
            status, error = "timeout", f"the cell ran longer than {timeout:g} s and was stopped"
            if is_test:
                timed_out.add(tests[grade_id])
            stop()
            result["restarts"] += 1
            start()
        except DeadKernelError:
            status, error = "dead", "the kernel died while running this cell"
            stop()
            result["restarts"] += 1
            start()
        except Exception as exc:  # anything else: record it and go on
            status, error = "error", f"{type(exc).__name__}: {exc}"
        if is_test:
            result["cells"][grade_id] = {"status": status, "error": _short(error)}
        elif status == "ok":
            succeeded.append(index)
        _record_output(result, budget, nb)
        save()
    stop()
    result["finished"] = True
    save(final=True)


if __name__ == "__main__":
    sys.exit(main())
