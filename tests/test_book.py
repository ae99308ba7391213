"""The book: its table of contents matches book/, and it builds with warnings as errors."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGE_SUFFIXES = (".md", ".ipynb")

# What the intro's one code cell prints (book/intro.md).  The numbers appear
# only in the executed output, never in the source shown above it.
INTRO_OUTPUT = re.compile(r"by hand: (\d+\.\d{4}) nats, F\.cross_entropy: (\d+\.\d{4}) nats")


def _toc_entries():
    """Paths (relative to the root, without suffix) of every page in _toc.yml, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({key: value for key, value in toc.items() if key != "root"})
    # Entries may name the suffix or leave it out; compare them without it.
    return [_strip_suffix(entry) for entry in entries]


def _strip_suffix(entry):
    for suffix in PAGE_SUFFIXES:
        if entry.endswith(suffix):
            return entry[: -len(suffix)]
    return entry


def _source_of(entry):
    """The page files that a toc entry (given without suffix) can refer to."""
    candidates = [ROOT / f"{entry}{suffix}" for suffix in PAGE_SUFFIXES]
    return [path for path in candidates if path.is_file()]


def test_toc_lists_each_page_once():
    entries = _toc_entries()
    duplicates = sorted({entry for entry in entries if entries.count(entry) > 1})
    assert not duplicates, f"_toc.yml lists these pages more than once: {duplicates}"


def test_toc_files_exist():
    missing = [entry for entry in _toc_entries() if not _source_of(entry)]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


def test_every_page_under_book_is_in_toc():
    listed = set(_toc_entries())
    pages = [
        path
        for path in BOOK.rglob("*")
        if path.suffix in PAGE_SUFFIXES
        and not any(part.startswith((".", "_")) for part in path.relative_to(BOOK).parts)
    ]
    assert pages, "no pages found under book/"
    orphans = sorted(
        str(path.relative_to(ROOT))
        for path in pages
        if path.relative_to(ROOT).with_suffix("").as_posix() not in listed
    )
    assert not orphans, (
        f"pages under book/ missing from _toc.yml (only_build_toc_files skips them): {orphans}"
    )


@pytest.mark.book
def test_book_builds_without_warnings(built_book):
    """Build the whole book, executing every code cell, as `make book` does."""
    if built_book.returncode != 0:
        pytest.fail(f"the book build failed:\n{built_book.failure}", pytrace=False)

    html = built_book.html
    assert (html / "index.html").is_file(), f"no index.html in {html}:\n{built_book.log}"
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    # myst-nb puts each executed output in a <div class="cell_output ...">, after the source.
    after_outputs = intro.split('class="cell_output')[1:]
    printed = [match for chunk in after_outputs for match in INTRO_OUTPUT.findall(chunk)]
    assert printed, "the output of the intro's code cell is not in book/intro.html"
    by_hand, builtin = printed[0]
    assert by_hand == builtin


# ---------------------------------------------------------------------------------------
# The chapters of the numbered parts follow the same pattern (CONTRIBUTING.md, "Chapters"):
# checked on the sources, without building.
# ---------------------------------------------------------------------------------------

MAX_CODE_LINE = 78  # d2l's rule: code reads on a narrow page
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SECTION_LABEL = re.compile(r"^\(sec-[a-z0-9-]+\)=$", re.MULTILINE)


def _chapters():
    """The chapter files of the numbered parts of _toc.yml (Part I onwards)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [
        chapter["file"]
        for part in toc.get("parts", [])
        if part.get("numbered")
        for chapter in part.get("chapters", [])
    ]
    return [_source_of(_strip_suffix(entry))[0] for entry in files if _source_of(entry)]


def _chapter_id(path):
    return path.stem


@pytest.fixture(params=_chapters(), ids=_chapter_id)
def chapter(request):
    return request.param, request.param.read_text(encoding="utf-8")


def test_chapters_exist():
    assert len(_chapters()) >= 7, "parts I and II have seven chapters"


def test_chapter_has_a_section_label(chapter):
    path, text = chapter
    assert SECTION_LABEL.search(text), f"{path.name}: no (sec-...)= label before its title"


def test_chapter_code_lines_fit_a_narrow_page(chapter):
    path, text = chapter
    long_lines = [
        line
        for cell in CODE_CELL.findall(text)
        for line in cell.splitlines()
        if len(line) > MAX_CODE_LINE
    ]
    assert not long_lines, f"{path.name}: code lines over {MAX_CODE_LINE} characters: {long_lines}"


def test_chapter_checks_its_claims(chapter):
    path, text = chapter
    cells = CODE_CELL.findall(text)
    checks = [cell for cell in cells if _checks(_parse_cell(cell))]
    assert checks, f"{path.name}: no code cell checks anything (assert, assert_close)"
    assert "cvloss_ref" in text, f"{path.name}: does not use the reference package"


# What a reader sees of a cell: a print, a displayed value or table, a glued number.
SHOWING_CALLS = {"print", "display", "Markdown", "glue"}


def _parse_cell(cell):
    """The cell's code as an AST, without its MyST option lines (``:tags: ...``)."""
    return ast.parse("\n".join(line for line in cell.splitlines() if not line.startswith(":")))


def _call_name(node):
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _shows(tree):
    """Whether the cell, at its top level (not inside a function it defines), shows a
    result: calls print/display/Markdown/glue, or ends with an expression that is shown."""
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and _call_name(node) in SHOWING_CALLS:
                return True
    last = tree.body[-1] if tree.body else None
    return isinstance(last, ast.Expr) and not isinstance(last.value, (ast.Call, ast.Constant))


def _checks(tree):
    """Whether the cell asserts something: ``assert``, an ``assert_*`` call, or a ``raise``."""
    return any(
        isinstance(node, (ast.Assert, ast.Raise))
        or (isinstance(node, ast.Call) and _call_name(node).startswith("assert"))
        for node in ast.walk(tree)
    )


def _pages():
    return sorted(BOOK.glob("*.md"))


@pytest.mark.parametrize("page", _pages(), ids=lambda path: path.stem)
def test_every_result_shown_is_checked(page):
    """A visible cell that prints or displays a result also asserts what the text says of it;
    figure cells (``hide-input``) are exempt, their numbers are checked where computed."""
    unchecked = [
        cell.strip().splitlines()[-1]
        for cell in CODE_CELL.findall(page.read_text(encoding="utf-8"))
        if "hide-input" not in cell and _shows(_parse_cell(cell)) and not _checks(_parse_cell(cell))
    ]
    assert not unchecked, (
        f"{page.name}: cells that show a result without checking it (their last lines): {unchecked}"
    )


def test_a_shown_but_unchecked_result_is_caught():
    shown = _parse_cell("x = 2 + 2\nprint(f'{x} apples')")
    assert _shows(shown) and not _checks(shown)
    assert _checks(_parse_cell("x = 2 + 2\nprint(x)\nassert x == 4"))
    assert _checks(_parse_cell("torch.testing.assert_close(a, b)"))
    assert not _shows(_parse_cell("def f():\n    print(1)\n\ny = f"))


def test_chapter_has_a_hidden_figure_cell(chapter):
    path, text = chapter
    figures = [cell for cell in CODE_CELL.findall(text) if "hide-input" in cell and "plt." in cell]
    assert figures, f"{path.name}: no figure drawn in a `tags: [hide-input]` cell"


#: Chapters without an exercise of their own, and why (every other chapter has one).
NO_EXERCISE = {
    "detection-loss": "assembles losses whose exercises are in a02 and a04",
}


def test_chapter_cites_and_links_its_exercise(chapter):
    """Each chapter cites its sources and ends its Exercise section with the `assignment`
    directive, which names the notebook and its functions and renders the launch buttons
    (tests/test_course_links.py checks what it names)."""
    path, text = chapter
    assert "{cite" in text, f"{path.name}: cites nothing from references.bib"
    if path.stem in NO_EXERCISE:
        assert ":::{assignment}" not in text, f"{path.name}: remove it from NO_EXERCISE"
        return
    assert ":::{assignment} " in text, f"{path.name}: no Exercise section with its assignment"


# ---------------------------------------------------------------------------------------
# One failure, one message: when the book does not build, the build test says why and the
# tests that need the HTML are skipped with a pointer to it, instead of erroring each.
# ---------------------------------------------------------------------------------------

FAILED_BUILD = """
@pytest.fixture(scope="session")
def built_book():
    from types import SimpleNamespace
    return SimpleNamespace(returncode=1, log="...", html=None,
                           failure="triplet-loss.err.log: AssertionError: no collapse")
"""

USES_THE_BOOK = """
def test_book_builds_without_warnings(built_book):
    import pytest
    if built_book.returncode:
        pytest.fail(built_book.failure, pytrace=False)

def test_page_one(book_html):
    pass

def test_page_two(book_html):
    pass
"""


@pytest.fixture
def failed_build_suite(pytester):
    """A copy of tests/conftest.py whose book build failed, and tests that need the book."""
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text() + FAILED_BUILD)
    pytester.makepyfile(test_uses_the_book=USES_THE_BOOK)
    return pytester


def test_a_failed_build_is_reported_once(failed_build_suite):
    result = failed_build_suite.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*no collapse*", "*the book did not build; *reports why*"])


def test_without_the_build_test_the_failure_is_not_hidden(failed_build_suite):
    result = failed_build_suite.runpytest("-p", "no:cacheprovider", "-k", "page")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["the book did not build:", "*no collapse"])


SHARES_A_FIXTURE = """
import os
import pytest

@pytest.fixture(scope="session")
def expensive():
    with open(os.environ["FIXTURE_LOG"], "a") as log:
        print(os.environ["PYTEST_XDIST_WORKER"], file=log)

@pytest.mark.parametrize("i", range(6))
def test_shares(expensive, i):
    pass

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
"""


def test_tests_sharing_a_fixture_run_on_one_worker(pytester, monkeypatch):
    """`make test`'s two workers build the book once: its users are kept on one worker.

    Fails when pytest-xdist's ``--dist loadgroup`` ignores the groups that
    tests/conftest.py assigns (it does with pytest 9.2: pytest-dev/pytest-xdist#1386).
    """
    tests = pytester.mkpydir("tests")
    (tests / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tests / "_env.py").write_text((ROOT / "tests" / "_env.py").read_text())
    (tests / "test_shared.py").write_text(SHARES_A_FIXTURE)
    log = pytester.path / "fixture.log"
    monkeypatch.setenv("FIXTURE_LOG", str(log))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", "--import-mode=importlib"
    )
    result.assert_outcomes(passed=12)
    assert len(log.read_text().split()) == 1, f"the fixture was created on {log.read_text()!r}"


TIMED_OUT = """Traceback (most recent call last):
  File "nbclient/client.py", line 856, in _async_handle_timeout
nbclient.exceptions.CellTimeoutError: A cell timed out while it was being executed, after 300 s.
The message was: Cell execution timed out.
Here is a preview of the cell contents:
-------------------
['for name, options in runs.items():']
...
['    print(name)']
-------------------
"""


def test_a_failed_build_names_the_exception_of_each_chapter(tmp_path):
    """A time-out's report ends with a preview of the cell: the summary still says what
    was raised, and in which chapter."""
    from tests.conftest import _build_failure

    (tmp_path / "gan-losses.err.log").write_text(TIMED_OUT)
    (tmp_path / "focal-loss.err.log").write_text("Traceback\nAssertionError: no collapse\n")
    summary = _build_failure("WARNING: something else\nprogress 50%", tmp_path)
    assert summary.splitlines()[:2] == [
        "focal-loss.err.log: a cell failed:",
        "    AssertionError: no collapse",
    ]
    assert "gan-losses.err.log: a cell failed:\n    nbclient.exceptions.CellTimeoutError" in summary
    assert summary.endswith("WARNING: something else")
