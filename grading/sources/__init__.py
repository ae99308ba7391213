"""Write the instructor notebooks of ``solutions/`` (the nbgrader source) from this file.

The notebooks are the source of truth that instructors edit; this script is how the first
ones were written and how they can be regenerated after a deliberate change here::

    .venv/bin/python -m grading.sources          # rewrites every solutions/aNN_*/ notebook

Each assignment is one module of this package (``a01_information.py``, ...) that defines
``EXERCISES`` (a list of :class:`Exercise`) and ``ASSIGNMENT`` (its title, chapter link, rules
and exercises); ``grading.course.ASSIGNMENTS`` lists them in book order.

Every exercise follows the same pattern (see ``../shared/STYLE.md``): a read-only Markdown
cell with the task, a solution cell with the signature and docstring given and the answer
between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, two visible test cells and one hidden
test cell (inputs drawn at grading time through ``HIDDEN_SEED``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nbformat

from ..course import ASSIGNMENTS, ROOT, SOURCE_DIR

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def markdown(grade_id: str, text: str):
    cell = nbformat.v4.new_markdown_cell(text.strip("\n"), metadata=_meta(grade_id, locked=True))
    cell.id = grade_id
    return cell


def code(grade_id: str, text: str, **kwargs):
    cell = nbformat.v4.new_code_cell(text.strip("\n"), metadata=_meta(grade_id, **kwargs))
    cell.id = grade_id
    return cell


@dataclass
class Exercise:
    """One function to write: its task, stub, solution and tests."""

    function: str
    title: str
    task: str
    signature: str
    docstring: str
    solution: str
    forbid: str  # a Python list expression, e.g. "[F.kl_div]"
    visible: list[tuple[str, str, str]] = field(default_factory=list)  # (what, doc, extra args)
    hidden: list[str] = field(default_factory=list)  # extra args of each hidden call

    def task_cells(self) -> list:
        """The read-only task and the solution cell (signature, docstring, answer)."""
        body = (
            f"{self.signature}\n"
            f'    """{self.docstring.strip()}\n    """\n'
            "    ### BEGIN SOLUTION\n"
            f"{self.solution.strip(chr(10))}\n"
            "    ### END SOLUTION"
        )
        return [
            markdown(f"{self.function}_task", f"## {self.title}\n\n{self.task.strip()}"),
            code(self.function, body, solution=True),
        ]

    def cells(self) -> list:
        fn = self.function
        cells = self.task_cells()
        for what, doc, extra in self.visible:
            call = f'assert_loss_matches({fn}, "{fn}", forbid={self.forbid}{extra})'
            cells.append(
                code(
                    f"test_{fn}_{what}",
                    f'"""{doc}"""\n{call}',
                    grade=True,
                    locked=True,
                    points=1,
                )
            )
        calls = "\n".join(
            f'assert_loss_matches({fn}, "{fn}", forbid={self.forbid}, seed=HIDDEN_SEED{extra})'
            for extra in self.hidden
        )
        cells.append(
            code(
                f"test_{fn}_hidden",
                f'"""Check {fn} on every case, with inputs drawn at grading time"""\n'
                f"### BEGIN HIDDEN TESTS\n{calls}\n### END HIDDEN TESTS",
                grade=True,
                locked=True,
                points=2,
            )
        )
        return cells


#: The imports every notebook starts with (an assignment may give its own ``"setup"``).
SETUP = """
import torch
import torch.nn.functional as F
"""

HARNESS = """
import os

from cvloss_ref.testing import assert_loss_matches

# Hidden tests draw their inputs from this seed, which the grader sets at grading time.
HIDDEN_SEED = int(os.environ.get("CVLOSS_HIDDEN_SEED", "2024"))
"""

HELPERS = '''
def reduce_loss(values, reduction):
    """Reduce per-sample values: "none" keeps them, "sum" adds them, "mean" averages them.

    The mean of an empty tensor is 0 (with a zero gradient), not NaN.
    """
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean":
        return values.mean() if values.numel() else 0.0 * values.sum()
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
'''


def _intro(title: str, chapter: str, chapter_title: str, functions: str, rules: str) -> str:
    return f"""
# {title}

This assignment goes with the chapter [{chapter_title}]({chapter}) of the book. You will write
{functions} yourself, with the same names and signatures as in `cvloss_ref`.

**Rules.**
- Write each function with elementary tensor operations (`torch.log`, `torch.where`, `sum`,
  ...). {rules} Calling `cvloss_ref` itself is refused too.
- Keep the loss device- and dtype-agnostic: no `.item()`, `.numpy()` or Python `if` on tensor
  values; create new tensors with `torch.zeros_like(x)` or `device=x.device`.
- Put all your code inside the solution cells (between the signature and the end of the cell):
  only those cells are graded. Do not edit or delete the test cells.
- Run every cell from the top (*Kernel → Restart & Run All*) before you submit. The visible
  tests tell you what is wrong; hidden tests check the same function on inputs drawn when your
  notebook is graded.
"""


# ----------------------------------------------------------------------------- a01


def _load_sources() -> dict[str, dict]:
    import importlib
    import importlib.util

    found = {}
    for name in ASSIGNMENTS:
        if importlib.util.find_spec(f"{__name__}.{name}") is None:
            continue  # not written yet
        found[name] = importlib.import_module(f"{__name__}.{name}").ASSIGNMENT
    return found


def sources() -> dict[str, dict]:
    """Every written assignment's description, in book order."""
    return _load_sources()


def build(assignment: str) -> nbformat.NotebookNode:
    info = sources()[assignment]
    cells = [
        markdown(
            "intro",
            _intro(
                info["title"],
                info["chapter"],
                info["chapter_title"],
                info["functions"],
                info["rules"],
            ),
        ),
        code(
            "setup",
            info.get("setup", SETUP),
            locked=True,
        ),
        code("harness", info.get("harness", HARNESS), locked=True),
        code("helpers", info.get("helpers", HELPERS), locked=True),
    ]
    for exercise in info["exercises"]:
        cells.extend(exercise.cells())
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return nb


def main() -> None:
    for assignment, info in sources().items():
        path = SOURCE_DIR / assignment / f"{info['notebook']}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build(assignment), str(path))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
