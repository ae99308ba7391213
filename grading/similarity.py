"""Copy detection for ``python -m grading report``: token fingerprints with winnowing.

The reference package ``cvloss_ref`` is public by design, so a student can paste its source
(or a classmate's answer, or a leaked answer key) instead of writing a solution.  This module
compares every solution cell of an assignment (one function, named by its grade_id) with

* the source of the ``cvloss_ref`` function the cell's tests check (``reference`` of
  ``assert_loss_matches``; the grade_id when there is none) and of every ``cvloss_ref``
  function it calls, recursively (``_xlogx``, ``_reduce``, the ``_check_*`` helpers, ...);
* the instructor's solution in ``solutions/`` (labelled ``instructor solution``);
* the same cell of every other student of the assignment,

and flags the pairs that share most of their fingerprints.  Flags are for the instructor to
look at; they never change a score (nothing here writes ``results.json`` or the gradebook).

How a cell becomes fingerprints (Schleimer, Wilkerson and Aiken, "Winnowing: local
algorithms for document fingerprinting", SIGMOD 2003):

1. :func:`tokens`: Python's own tokenizer; comments, docstrings (and other string
   statements), newlines and indentation are dropped; every identifier becomes ``V``
   except keywords, builtins and attribute names (``torch.where`` becomes ``V.where``), every
   number ``N`` and every string ``S``.  Renaming variables, reformatting or rewording
   comments therefore changes nothing; rewriting the computation does.
2. :func:`kgram_hashes`: a stable 64-bit hash of every run of :data:`K` consecutive
   tokens (runs shorter than ``K`` tokens are noise, never matched).
3. :func:`winnow`: in every window of :data:`WINDOW` consecutive hashes the smallest
   (rightmost on ties) is kept: any shared run of at least ``K + WINDOW - 1`` tokens is
   guaranteed to share a fingerprint.
4. The released stub (signature and docstring, which every student gets from
   ``exercises/``) is removed: a k-gram that occurs in the stub is never a fingerprint.

The score of a cell against another text is the share of the cell's fingerprints whose
k-gram occurs anywhere in the other text (:func:`containment`); a student pair gets both
directions and is flagged on the larger; a reference or instructor comparison only on the
student's share (the reference also validates its arguments, which no student copies).
A flag needs a score of at least :data:`THRESHOLD` and at least :data:`MIN_SHARED` shared
fingerprints (a five-line solution made of common idioms is not a copy).

Measured with ``K = 8`` and ``WINDOW = 4`` (``tests/test_similarity.py`` holds the texts):

* copies: ``cvloss_ref.entropy`` and its helpers pasted with every name renamed and the
  comments removed, 1.00 against ``cvloss_ref`` (92 fingerprints); the same with the
  validation dropped and a helper inlined, 0.69; the instructor's solution renamed, 1.00.
* honest: two independent correct implementations of each a01 function: at most 0.29
  against ``cvloss_ref``, 0.50 against the instructor's solution (``kl_divergence``, 12
  shared) and 0.40 against each other; the stub left as released: no fingerprint at all.
* the instructor's solutions are the reference's core without its checks: against
  ``cvloss_ref``, median 0.36 over the 39 cells that have a reference, and up to 0.90
  (``pairwise_distances``; ``gram_matrix`` 0.88, ``mine_triplets`` 0.78, ``box_iou``
  0.71), so a student who pastes either is flagged.
* the demo (``grading/demo/``): its submissions are the instructor's solutions
  (``grading.demo.submission``), so ``make grade-demo`` flags every cell of alice, bob and
  carol against the instructor's solution and each other (1.00), bob's rewritten
  ``cross_entropy`` at 0.69, and not ``hinge_loss`` (one line, 9 fingerprints).

so :data:`THRESHOLD` = 0.6 lies between the honest (at most 0.50) and the copies (at
least 0.69).  Comparing one cell of 30 students costs well under a second; ``report``'s
time is mostly importing the grader (about 5 s).

Every flagged pair gets a side-by-side HTML page (:func:`side_by_side`): both texts,
HTML-escaped, the shared k-grams highlighted.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import html
import inspect
import io
import keyword
import re
import textwrap
import tokenize
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Tokens per k-gram: a shared run shorter than this is never a match (noise threshold).
K = 8
#: Hashes per winnowing window: a shared run of ``K + WINDOW - 1`` tokens always matches.
WINDOW = 4
#: The share of a cell's fingerprints found in the other text from which a pair is flagged.
THRESHOLD = 0.6
#: Fewest shared fingerprints for a flag (about two lines of code): a one-line function
#: (``hinge_loss``: 9 fingerprints) has one natural way to be written, not a copy.
MIN_SHARED = 10
#: How deep :func:`reference_source` follows the ``cvloss_ref`` functions a function calls.
MAX_HELPER_DEPTH = 3
#: The name a comparison with the instructor's solution gives the other side.
INSTRUCTOR = "instructor solution"
#: The name a comparison with the reference package gives the other side.
REFERENCE = "cvloss_ref"

_DROPPED = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}
_KEPT_NAMES = set(keyword.kwlist) | set(dir(builtins))
_MAGIC = re.compile(r"^[ \t]*[%!].*$", re.MULTILINE)  # IPython magics and shell escapes
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


# ----------------------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class Token:
    """A normalised token and where it lies in the text (character offsets)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Fingerprints:
    """A text's tokens, its k-grams (hash -> index of each first token) and the hashes
    winnowing selected."""

    tokens: list[Token]
    kgrams: dict[int, list[int]]
    selected: frozenset[int]


def _offsets(text: str) -> list[int]:
    """The character offset at which each line (1-based) starts."""
    starts = [0, 0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _raw_tokens(text: str):
    """Python's tokens of ``text``, up to the first error (a cell need not compile)."""
    try:
        yield from tokenize.generate_tokens(io.StringIO(text).readline)
    except (tokenize.TokenError, SyntaxError):
        return


def tokens(code: str) -> list[Token]:
    """The normalised tokens of ``code``, without comments, docstrings or layout."""
    # Magic lines are blanked with spaces so that offsets still point into ``code``.
    text = _MAGIC.sub(lambda m: " " * len(m.group()), code)
    starts = _offsets(text)
    out: list[Token] = []
    statement: list[Token] = []  # the current logical line, to drop string statements
    only_strings = True
    previous = ""
    for tok in _raw_tokens(text):
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if not (statement and only_strings):
                out.extend(statement)
            statement, only_strings = [], True
            continue
        if tok.type in _DROPPED:
            continue
        start = starts[tok.start[0]] + tok.start[1]
        end = starts[tok.end[0]] + tok.end[1]
        if tok.type == tokenize.NAME:
            kept = tok.string in _KEPT_NAMES or previous == "."
            normal = tok.string if kept else "V"
        elif tok.type == tokenize.NUMBER:
            normal = "N"
        elif tok.type == tokenize.STRING:
            normal = "S"
        else:
            normal = tok.string
        only_strings = only_strings and tok.type == tokenize.STRING
        statement.append(Token(normal, start, end))
        previous = tok.string
    if not (statement and only_strings):
        out.extend(statement)
    return out


def _hash(texts: tuple[str, ...]) -> int:
    """A stable 64-bit hash of a k-gram (the same in every process)."""
    digest = hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def kgram_hashes(toks: list[Token], k: int = K) -> list[int]:
    """The hash of every run of ``k`` consecutive tokens, in order."""
    return [_hash(tuple(t.text for t in toks[i : i + k])) for i in range(len(toks) - k + 1)]


def winnow(hashes: list[int], window: int = WINDOW) -> set[int]:
    """The hashes winnowing selects: the smallest of every window (rightmost on ties)."""
    if not hashes:
        return set()
    if len(hashes) <= window:
        return {min(hashes)}
    selected = set()
    for i in range(len(hashes) - window + 1):
        chunk = hashes[i : i + window]
        smallest = min(chunk)
        selected.add(smallest)
    return selected


def fingerprint(code: str, exclude: str = "") -> Fingerprints:
    """The fingerprints of ``code``, without any k-gram that also occurs in ``exclude``
    (the released stub)."""
    boilerplate = set(kgram_hashes(tokens(exclude))) if exclude else set()
    toks = tokens(code)
    hashes = kgram_hashes(toks)
    kgrams: dict[int, list[int]] = {}
    for i, h in enumerate(hashes):
        kgrams.setdefault(h, []).append(i)
    return Fingerprints(toks, kgrams, frozenset(winnow(hashes) - boilerplate))


def containment(mine: Fingerprints, other: Fingerprints) -> tuple[float, int]:
    """The share of ``mine``'s fingerprints whose k-gram occurs in ``other``, and how many."""
    if not mine.selected:
        return 0.0, 0
    shared = sum(1 for h in mine.selected if h in other.kgrams)
    return shared / len(mine.selected), shared


# ----------------------------------------------------------------------------- sources


def reference_source(name: str) -> tuple[str, list[str]] | None:
    """The source of ``cvloss_ref.<name>`` and of every ``cvloss_ref`` function it calls
    (recursively, :data:`MAX_HELPER_DEPTH` deep), and their qualified names; ``None`` when
    the package has no such function."""
    import cvloss_ref

    root = getattr(cvloss_ref, name, None)
    if root is None or not inspect.isfunction(inspect.unwrap(root)):
        return None
    parts: list[str] = []
    names: list[str] = []
    seen: set[int] = set()

    def visit(function, depth: int) -> None:
        function = inspect.unwrap(function)
        if id(function) in seen or not inspect.isfunction(function):
            return
        if not function.__module__.startswith("cvloss_ref"):
            return
        seen.add(id(function))
        try:
            code = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError):
            return
        qualified = f"{function.__module__}.{function.__qualname__}"
        names.append(qualified)
        parts.append(f"# {qualified}\n{code}")
        if depth >= MAX_HELPER_DEPTH:
            return
        for called in _referenced_names(code):
            value = function.__globals__.get(called)
            if value is not None and inspect.isfunction(inspect.unwrap(value)):
                visit(value, depth + 1)

    visit(root, 0)
    return "\n".join(parts), names


def _referenced_names(code: str) -> list[str]:
    """The plain names a piece of source reads, in order of first use."""
    found: dict[str, None] = {}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name):
            found.setdefault(node.id, None)
    return list(found)


# ----------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Flag:
    """A solution cell that shares most of its fingerprints with another text."""

    function: str
    student: str
    other: str  # another student, INSTRUCTOR, or REFERENCE
    score: float  # the share of the student's fingerprints found in the other
    other_score: float | None  # the other student's share (student pairs only)
    shared: int
    detail: str = ""  # e.g. the reference functions compared
    page: Path | None = None

    def line(self) -> str:
        both = f"{self.score:.2f}"
        if self.other_score is not None:
            both += f" / {self.other_score:.2f}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.function}: {self.student} ~ {self.other}{detail}: {both}"


@dataclass
class CopyReport:
    """What :func:`find_copies` found: the flags, and the submissions it had to skip."""

    flags: list[Flag] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<student>: <why>"
    students: int = 0


@dataclass
class _Cell:
    """One solution cell of the assignment: its stub, answer key and reference."""

    function: str
    stub: str
    instructor: Fingerprints
    instructor_code: str
    reference: tuple[str, list[str]] | None
    reference_prints: Fingerprints | None


def _cells(assignment: str) -> list[_Cell]:
    from .notebooks import nbgrader_meta, source_notebooks
    from .release import student_version

    cells = []
    for source in source_notebooks(assignment):
        checked = {c.function: c.reference for t in source.tests for c in t.checks}
        stubs = {
            nbgrader_meta(c).get("grade_id"): c.source for c in student_version(source.nb).cells
        }
        answers = {nbgrader_meta(c).get("grade_id"): c.source for c in source.nb.cells}
        for grade_id in source.solution_ids:
            stub = stubs.get(grade_id, "")
            reference = reference_source(checked.get(grade_id, grade_id))
            cells.append(
                _Cell(
                    function=grade_id,
                    stub=stub,
                    instructor=fingerprint(answers[grade_id], stub),
                    instructor_code=answers[grade_id],
                    reference=reference,
                    reference_prints=fingerprint(reference[0]) if reference else None,
                )
            )
    return cells


def _submitted_cells(assignment: str, submitted_dir: Path) -> tuple[dict, list[str]]:
    """Every student's solution cells (student -> grade_id -> code) and what was skipped."""
    from .autograde import _read_submission, _solutions
    from .notebooks import source_notebooks

    sources = source_notebooks(assignment)
    found: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    folders = sorted(submitted_dir.glob(f"*/{assignment}")) if submitted_dir.is_dir() else []
    for folder in folders:
        student = folder.parent.name
        if student.startswith(".") or not folder.is_dir():
            continue
        cells: dict[str, str] = {}
        for source in sources:
            nb, reason = _read_submission(folder / f"{source.name}.ipynb")
            if nb is None:
                skipped.append(f"{student}: {reason}")
                continue
            cells.update(_solutions(nb, source)[0])
        found[student] = cells
    return found, skipped


def _reference_label(names: list[str]) -> str:
    """``cvloss_ref.information.entropy + 7 helpers``: what a reference comparison read."""
    helpers = len(names) - 1
    return names[0] + (f" + {helpers} helper{'s' * (helpers != 1)}" if helpers else "")


def _flagged(score: float, shared: int, threshold: float) -> bool:
    return score >= threshold and shared >= MIN_SHARED


def _compare(cell: _Cell, codes: dict[str, str], threshold: float):
    """The flags of one solution cell: ``(flag, student's code, other text)``."""
    prints = {s: fingerprint(code, cell.stub) for s, code in codes.items()}
    for student, mine in prints.items():
        if cell.reference is not None and cell.reference_prints is not None:
            score, shared = containment(mine, cell.reference_prints)
            if _flagged(score, shared, threshold):
                detail = _reference_label(cell.reference[1])
                flag = Flag(cell.function, student, REFERENCE, score, None, shared, detail)
                yield flag, codes[student], cell.reference[0]
        score, shared = containment(mine, cell.instructor)
        if _flagged(score, shared, threshold):
            flag = Flag(cell.function, student, INSTRUCTOR, score, None, shared)
            yield flag, codes[student], cell.instructor_code
    names = sorted(prints)
    for i, student in enumerate(names):
        for other in names[i + 1 :]:
            score, shared = containment(prints[student], prints[other])
            back, shared_back = containment(prints[other], prints[student])
            if _flagged(score, shared, threshold) or _flagged(back, shared_back, threshold):
                flag = Flag(cell.function, student, other, score, back, max(shared, shared_back))
                yield flag, codes[student], codes[other]


def find_copies(
    assignment: str, submitted_dir: Path, pages_dir: Path | None, threshold: float = THRESHOLD
) -> CopyReport:
    """Compare every submitted solution cell of ``assignment`` with the reference package,
    the instructor's solution and the other students'; write a side-by-side page per flag
    to ``pages_dir/<student>-<other>-<function>.html`` (none when it is ``None``)."""
    submitted, skipped = _submitted_cells(assignment, submitted_dir)
    report = CopyReport(skipped=skipped, students=len(submitted))
    for cell in _cells(assignment):
        codes = {
            s: cells[cell.function] for s, cells in submitted.items() if cell.function in cells
        }
        for flag, mine, theirs in _compare(cell, codes, threshold):
            if pages_dir is not None:
                flag = replace(flag, page=_write_page(flag, mine, theirs, cell.stub, pages_dir))
            report.flags.append(flag)
    return report


# ----------------------------------------------------------------------------- side by side


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
mark { background: #ffd33d; }
"""


def _spans(text: str, prints: Fingerprints, shared: set[int]) -> list[tuple[int, int]]:
    """The character spans of the tokens in shared k-grams; neighbours are merged when
    only whitespace lies between them (a comment or docstring stays unmarked)."""
    marked = sorted({i + j for h in shared for i in prints.kgrams.get(h, []) for j in range(K)})
    merged: list[tuple[int, int]] = []
    for index in marked:
        token = prints.tokens[index]
        if merged and not text[merged[-1][1] : token.start].strip():
            merged[-1] = (merged[-1][0], token.end)
        else:
            merged.append((token.start, token.end))
    return merged


def _highlighted(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` HTML-escaped, with ``spans`` in ``<mark>``."""
    out, at = [], 0
    for start, end in spans:
        out.append(html.escape(text[at:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


def side_by_side(title: str, left: tuple[str, str], right: tuple[str, str], stub: str = "") -> str:
    """An HTML page with two texts (``(label, text)``) side by side, the k-grams they share
    (outside ``stub``) highlighted in both; everything from the texts is escaped."""
    boilerplate = set(kgram_hashes(tokens(stub))) if stub else set()
    a, b = fingerprint(left[1]), fingerprint(right[1])
    shared = (set(a.kgrams) & set(b.kgrams)) - boilerplate
    columns = "".join(
        f"<div><h2>{html.escape(label)}</h2><pre>{_highlighted(text, _spans(text, prints, shared))}"
        "</pre></div>"
        for (label, text), prints in ((left, a), (right, b))
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Highlighted: runs of {K} or more tokens the two share (identifiers, numbers and "
        "strings normalised; comments, docstrings and the released stub ignored). A flag is "
        "for the instructor to judge; it never changes a score.</p>"
        f"<div class='pair'>{columns}</div></body></html>\n"
    )


def _write_page(flag: Flag, mine: str, theirs: str, stub: str, folder: Path) -> Path:
    """Write the side-by-side page of ``flag`` and return its path."""
    name = "-".join(_SAFE_NAME.sub("_", part) for part in (flag.student, flag.other, flag.function))
    path = folder / f"{name}.html"
    folder.mkdir(parents=True, exist_ok=True)
    title = f"{flag.line()} (fingerprints shared: {flag.shared})"
    other = f"{flag.other}: {flag.detail}" if flag.detail else flag.other
    if flag.other == REFERENCE:  # every function read, named in a comment above its source
        other = f"{REFERENCE}: {flag.detail.split(' + ')[0]} and the functions it calls"
    page = side_by_side(title, (flag.student, mine), (other, theirs), stub)
    path.write_text(page, encoding="utf-8")
    return path
