"""From a chapter to its exercise and back, the install cell, handing in, the student branch.

The addresses come from ``book/_ext/course_links.py`` (also the book's Sphinx extension);
each is checked here against the form the platform documents (Binder's ``/v2/gh/`` with
``labpath``, Colab's ``/github/<owner>/<repo>/blob/<branch>/<path>``, nbgitpuller's
``/hub/user-redirect/git-pull``), and against the files of the checkout.  The built book's
pages and their links are checked in a browser by tests/test_book_browser.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat
import pytest

from grading.release import HAND_IN_ID, INSTALL_ID, _course_links, course_cells

ROOT = Path(__file__).resolve().parents[1]
links = _course_links()
SETTINGS = links.Settings.load(ROOT)
ASSIGNMENTS = sorted(p.name for p in (ROOT / "exercises").glob("a*"))
EXERCISES = sorted((ROOT / "exercises").glob("a*/*.ipynb"))
CHAPTERS = sorted((ROOT / "book").glob("*.md"))
DIRECTIVE = re.compile(r"^:::\{assignment\} (\S+)\n(?::functions: (.*)\n)?:::", re.MULTILINE)


def _settings(**changes):
    fields = {**SETTINGS.__dict__, **changes}
    return links.Settings(**fields)


# ------------------------------------------------------------------------- addresses


def test_launch_addresses_open_the_notebook_on_the_student_branch():
    settings = _settings(
        repository_url="https://github.com/owner/course",
        student_branch="student",
        jupyterhub_url="https://hub.example.edu",
    )
    path = "exercises/a02_classification/classification.ipynb"

    binder = urlparse(links.binder_url(settings, path))
    assert (binder.scheme, binder.netloc) == ("https", "mybinder.org")
    assert binder.path == "/v2/gh/owner/course/student"
    assert parse_qs(binder.query) == {"labpath": [path]}

    colab = links.colab_url(settings, path)
    assert colab == (
        "https://colab.research.google.com/github/owner/course/blob/student/"
        "exercises/a02_classification/classification.ipynb"
    )

    hub = urlparse(links.jupyterhub_url(settings, path))
    assert hub.netloc == "hub.example.edu" and hub.path == "/hub/user-redirect/git-pull"
    # nbgitpuller clones into a folder named after the repository, under the user's home.
    assert parse_qs(hub.query) == {
        "repo": ["https://github.com/owner/course"],
        "branch": ["student"],
        "urlpath": [f"lab/tree/course/{path}"],
    }
    assert links.repository_url(settings, path) == (
        f"https://github.com/owner/course/blob/student/{path}"
    )
    assert links.package_url(settings) == "git+https://github.com/owner/course@student"


def test_no_hub_button_without_a_hub_and_no_colab_off_github():
    settings = _settings(repository_url="https://gitlab.example.edu/course/cv", jupyterhub_url="")
    path = "exercises/a01_information/information.ipynb"
    assert links.jupyterhub_url(settings, path) is None
    assert links.colab_url(settings, path) is None  # Colab opens notebooks from GitHub only
    binder = urlparse(links.binder_url(settings, path))
    assert binder.path.startswith("/v2/git/https%3A%2F%2Fgitlab.example.edu%2Fcourse%2Fcv/")


def test_chapter_links_become_published_pages():
    settings = _settings(book_url="https://course.example.edu/book-site/")
    chapters = {"focal-loss", "iou-losses"}
    text = (
        "See [focal](../../book/focal-loss.md), [IoU](https://old.example/x/book/iou-losses.html"
        "#generalized-iou), [other](https://example.org/book/not-a-chapter.html)."
    )
    assert links.localise_chapter_links(text, settings, chapters) == (
        "See [focal](https://course.example.edu/book-site/book/focal-loss.html), "
        "[IoU](https://course.example.edu/book-site/book/iou-losses.html#generalized-iou), "
        "[other](https://example.org/book/not-a-chapter.html)."
    )


# ------------------------------------------------------------- the chapters' sections


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_section_names_what_its_assignment_asks(chapter):
    """A chapter's Exercise section opens with the directive (whose functions must exist:
    the book build fails otherwise), and says nothing of folders or `make lab` by hand."""
    text = chapter.read_text(encoding="utf-8")
    if "\n## Exercise\n" not in text:
        return
    section = text.split("\n## Exercise\n", 1)[1].split("\n## ", 1)[0]
    found = DIRECTIVE.search(section)
    assert found, f"{chapter.name}: its Exercise section has no assignment directive"
    assignment, functions = found[1], (found[2] or "").split()
    notebooks = links.read_assignment(ROOT, assignment)
    assert notebooks, f"{chapter.name}: no assignment {assignment}"
    asked = {f for _, _, fs in notebooks for f in fs}
    assert set(functions) <= asked, f"{chapter.name}: {set(functions) - asked} not in {asked}"
    assert "exercises/" not in section.replace(found[0], "")


def _sphinx_build(tmp_path, page: str, hub: str = "") -> subprocess.CompletedProcess:
    """A one-page Sphinx project using the extension, with the checkout's exercises/."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "exercises").symlink_to(ROOT / "exercises")
    (src / "index.md").write_text(page, encoding="utf-8")
    theme = {
        "repository_url": "https://github.com/owner/course",
        "launch_buttons": {
            "binderhub_url": "https://mybinder.org",
            "colab_url": "https://colab.research.google.com",
            "jupyterhub_url": hub,
        },
    }
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['myst_parser', 'course_links']\n"
        "myst_enable_extensions = ['colon_fence']\n"
        "exclude_patterns = ['exercises']\n"
        "html_theme = 'basic'\n"
        f"html_theme_options = {theme!r}\n"
        "html_baseurl = 'https://owner.github.io/course/'\n",
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_directive_renders_launch_buttons_for_the_notebook(tmp_path):
    page = "# Chapter\n\n:::{assignment} a02_classification\n:functions: hinge_loss\n:::\n"
    result = _sphinx_build(tmp_path, page, hub="https://hub.example.edu")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'<a class="([^"]*)" href="([^"]*)"', html)
    by_kind = {cls: href.replace("&amp;", "&") for cls, href in hrefs}
    path = "exercises/a02_classification/classification.ipynb"
    settings = _settings(
        repository_url="https://github.com/owner/course",
        jupyterhub_url="https://hub.example.edu",
    )
    expected = {
        "course-notebook-link": links.repository_url(settings, path),
        "launch-binder": links.binder_url(settings, path),
        "launch-colab": links.colab_url(settings, path),
        "launch-jupyterhub": links.jupyterhub_url(settings, path),
    }
    for kind, url in expected.items():
        found = [href for cls, href in by_kind.items() if kind in cls.split()]
        assert found == [url], (kind, by_kind)
    assert '<code class="docutils literal notranslate"><span class="pre">hinge_loss' in html


def test_the_directive_refuses_a_function_the_assignment_lacks(tmp_path):
    page = "# Chapter\n\n:::{assignment} a02_classification\n:functions: riou_loss\n:::\n"
    result = _sphinx_build(tmp_path, page)
    assert result.returncode != 0
    assert "has no exercise riou_loss" in result.stderr, result.stderr


# ------------------------------------------------------------- the notebooks' cells


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.parent.name)
def test_every_exercise_links_its_chapters_by_their_published_address(path):
    nb = nbformat.read(str(path), as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    chapters = [t for t in targets if "/book/" in t or t.startswith("../")]
    assert chapters, f"{path.name}: no link to the book"
    for target in chapters:
        assert target.startswith(f"{SETTINGS.book_url}book/"), target
        page = target.removeprefix(f"{SETTINGS.book_url}").split("#")[0]
        assert (ROOT / page.replace(".html", ".md")).is_file(), target
    tasks = [
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_task")
    ]
    for cell in tasks:
        assert SETTINGS.book_url in cell.source, f"{cell.metadata['nbgrader']['grade_id']}: no link"


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.parent.name)
def test_every_exercise_installs_first_and_ends_with_how_to_hand_it_in(path):
    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    install = code[0]
    assert install.metadata["nbgrader"]["grade_id"] == INSTALL_ID
    assert install.metadata["nbgrader"]["locked"]
    assert f'PACKAGE = "{links.package_url(SETTINGS)}"' in install.source
    last = nb.cells[-1]
    assert last.metadata["nbgrader"]["grade_id"] == HAND_IN_ID
    assert "Validate" in last.source
    assert f"**`{path.name}`**" in last.source
    assert f"`{path.parent.name}`" in last.source  # the name nbgrader's assignment list shows
    for setup in ("JupyterHub", "Moodle or Canvas", "shared folder"):
        assert setup in last.source


def test_course_cells_follow_the_settings_and_are_idempotent(monkeypatch):
    source = ROOT / "solutions" / "a01_information" / "information.ipynb"
    nb = nbformat.read(str(source), as_version=4)
    once = course_cells(nb, "a01_information", source.name)
    assert course_cells(once, "a01_information", source.name) == once
    moved = _settings(book_url="https://elsewhere.edu/c/")
    monkeypatch.setattr(links.Settings, "load", classmethod(lambda cls, root=ROOT: moved))
    again = course_cells(once, "a01_information", source.name)
    text = json.dumps([c.source for c in again.cells])
    assert "https://elsewhere.edu/c/book/information-theory.html" in text
    assert SETTINGS.book_url not in text


def test_the_handing_in_layouts_are_what_collect_reads(tmp_path, monkeypatch):
    """The shared-folder layout and a browser's renamed download, as the hand-in cell
    describes them, are imported by ``python -m grading collect``."""
    from grading import collect

    monkeypatch.setattr(collect, "SUBMITTED_DIR", tmp_path / "submitted")
    notebook = (ROOT / "exercises" / "a02_classification" / "classification.ipynb").read_bytes()
    shared = tmp_path / "shared"
    (shared / "s1234").mkdir(parents=True)
    (shared / "s1234" / "classification.ipynb").write_bytes(notebook)
    (shared / "s5678").mkdir()
    (shared / "s5678" / "classification (1).ipynb").write_bytes(notebook)
    result = collect.collect("a02_classification", shared)
    assert not result.skipped, result.skipped
    for student in ("s1234", "s5678"):
        copied = tmp_path / "submitted" / student / "a02_classification"
        assert (copied / "classification.ipynb").read_bytes() == notebook


# ------------------------------------------------------------------ the student branch


def test_the_student_release_has_the_exercises_and_not_the_answers(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    run = [sys.executable, "-m", "grading.student", "--folder", str(tmp_path / "students")]
    result = subprocess.run(run, cwd=clone, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", "student"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    tops = {name.split("/")[0] for name in names}
    assert {"book", "cvloss_ref", "exercises", "binder", "lab", "pyproject.toml"} <= tops
    assert not tops & {"solutions", "grading", "tests", "nbgrader_config.py", "benchmarks"}
    # Nothing in the release carries a solution: no cell keeps a BEGIN SOLUTION block.
    for name in names:
        if name.endswith(".ipynb"):
            assert name.startswith("exercises/"), name
    folder = tmp_path / "students"
    assert sorted(p.name for p in folder.iterdir()) == sorted(tops)
    assert "### BEGIN SOLUTION" not in "".join(
        p.read_text(encoding="utf-8") for p in folder.glob("exercises/*/*.ipynb")
    )
    # A second run with nothing new adds no commit; the branch keeps its history.
    tip = subprocess.run(["git", "rev-parse", "student"], cwd=clone, capture_output=True, text=True)
    again = subprocess.run(
        [sys.executable, "-m", "grading.student"], cwd=clone, capture_output=True
    )
    assert again.returncode == 0
    tip2 = subprocess.run(
        ["git", "rev-parse", "student"], cwd=clone, capture_output=True, text=True
    )
    assert tip.stdout == tip2.stdout
