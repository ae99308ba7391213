"""The book: its table of contents matches book/, and it builds with warnings as errors."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGE_SUFFIXES = (".md", ".ipynb")

# What the intro's one code cell prints (book/intro.md).  The numbers appear
# only in the executed output, never in the source shown above it.
INTRO_OUTPUT = re.compile(r"by hand: (\d+\.\d{4}) nats, F\.cross_entropy: (\d+\.\d{4}) nats")


def _toc_entries():
    """Paths (relative to the root, without suffix) of every page in _toc.yml, in order."""
    yaml = pytest.importorskip("yaml")
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
    log = built_book.log
    assert built_book.returncode == 0, f"the book build failed:\n{log}"

    html = built_book.html
    assert (html / "index.html").is_file(), f"no index.html in {html}:\n{log}"
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    # myst-nb puts each executed output in a <div class="cell_output ...">, after the source.
    after_outputs = intro.split('class="cell_output')[1:]
    printed = [match for chunk in after_outputs for match in INTRO_OUTPUT.findall(chunk)]
    assert printed, "the output of the intro's code cell is not in book/intro.html"
    by_hand, builtin = printed[0]
    assert by_hand == builtin


# ---------------------------------------------------------------------------------------
# The chapters of the numbered parts follow the same pattern (see ../shared/STYLE.md,
# "The book"): checked on the sources, without building.
# ---------------------------------------------------------------------------------------

MAX_CODE_LINE = 78  # d2l's rule: code reads on a narrow page
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SECTION_LABEL = re.compile(r"^\(sec-[a-z0-9-]+\)=$", re.MULTILINE)


def _chapters():
    """The chapter files of the numbered parts of _toc.yml (Part I onwards)."""
    yaml = pytest.importorskip("yaml")
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
    checks = [cell for cell in cells if "assert" in cell]
    assert checks, f"{path.name}: no code cell checks anything (assert, assert_close)"
    assert "cvloss_ref" in text, f"{path.name}: does not use the reference package"


def test_chapter_has_a_hidden_figure_cell(chapter):
    path, text = chapter
    figures = [cell for cell in CODE_CELL.findall(text) if "hide-input" in cell and "plt." in cell]
    assert figures, f"{path.name}: no figure drawn in a `tags: [hide-input]` cell"


def test_chapter_cites_and_links_its_exercise(chapter):
    path, text = chapter
    assert "{cite" in text, f"{path.name}: cites nothing from references.bib"
    assert "exercises/" in text, f"{path.name}: does not name its exercise folder"
