"""Execute one graded notebook inside the sandbox (run as a script; untrusted territory).

Reads ``job.json`` and ``graded.ipynb`` from the current directory and writes
``result.json`` after every cell (so that a run killed at its time limit still leaves
what it found).  For every test cell it records the kernel's ``execute_reply`` status,
not the displayed traceback (replacing IPython's traceback display changes nothing), and
a short error text.  A kernel that dies is restarted: the cells that had succeeded
before are run again and grading goes on with the next test cell.  After a timeout the
other test cells of the same function are skipped.  Outputs are capped.  The executed
notebook is written to ``executed.ipynb`` along with ``result.json`` (the grader takes only
its outputs, see :func:`grading.formgrader.outputs_of`).
"""

from __future__ import annotations

import json
import os
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

OUTPUT_CAP = 200_000  # characters of output kept per notebook


class _Client(NotebookClient):
    kept = 0
    truncated = False
    last_reply: dict | None = None

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        self.last_reply = exec_reply

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        if self.kept + size > OUTPUT_CAP:
            self.truncated = True
            return None
        self.kept += size
        return super().output(outs, msg, display_id, cell_index)


def _short(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


def main() -> None:
    job = json.loads(open("job.json", encoding="utf-8").read())
    nb = nbformat.read("graded.ipynb", as_version=4)
    timeout = float(job["timeout"])
    tests: dict = job["tests"]  # grade_id -> function
    result = {"cells": {}, "restarts": 0, "output_truncated": False, "finished": False}

    def save() -> None:
        with open("result.tmp", "w", encoding="utf-8") as file:
            json.dump(result, file)
        os.replace("result.tmp", "result.json")
        nbformat.write(nb, "executed.tmp")
        os.replace("executed.tmp", "executed.ipynb")

    succeeded: list[int] = []  # indices of non-test code cells that ran without error
    timed_out: set[str] = set()
    client = None
    context = None

    def start():
        nonlocal client, context
        client = _Client(
            nb, timeout=timeout, kernel_name="python3", allow_errors=True, record_timing=False
        )
        context = client.setup_kernel()
        context.__enter__()
        for index in succeeded:
            try:
                client.execute_cell(nb.cells[index], index)
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
            client.execute_cell(cell, index)
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
        result["output_truncated"] = client.truncated
        save()
    stop()
    result["finished"] = True
    save()


if __name__ == "__main__":
    sys.exit(main())
