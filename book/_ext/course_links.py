"""Links between the book and the exercise notebooks, derived from ``_config.yml``.

One place computes every address a student follows:

* from a chapter to its exercise: the ``assignment`` directive (below) renders, in a
  chapter's Exercise section, what the assignment asks (read from the released notebook,
  so that a chapter cannot promise a function the assignment does not have), a link to the
  notebook in the repository, and launch buttons that open *the notebook itself* on
  Binder, Google Colab and the course's JupyterHub (through nbgitpuller);
* from an exercise back to the book: :func:`chapter_url` is the rendered chapter's address
  under the published book (``html.baseurl``), which ``python -m grading release`` writes
  into the notebooks' links;
* the install cell of every exercise installs the course package from :func:`package_url`
  when it is missing (Colab).

Launches and links point at the *student branch* (``sphinx.config.course_student_branch``,
written by ``make student-release``): the book, the package and the exercises, without
``solutions/`` or ``grading/``.  Everything is a plain link: building the book fetches
nothing.

The module has no Sphinx import at the top, so that ``grading`` (which releases the
notebooks) and the tests can use the address builders without Sphinx.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = "exercises"
DEFAULT_STUDENT_BRANCH = "student"


@dataclass(frozen=True)
class Settings:
    """The addresses the links are made of (``_config.yml`` holds each once)."""

    repository_url: str  # https://github.com/<owner>/<name>
    student_branch: str  # the branch make student-release writes
    book_url: str  # the published book, ending with "/" (html.baseurl)
    binderhub_url: str = "https://mybinder.org"
    colab_url: str = "https://colab.research.google.com"
    jupyterhub_url: str = ""  # empty: no JupyterHub button

    @classmethod
    def from_config(cls, config: dict) -> Settings:
        """Settings from the parsed ``_config.yml`` of a Jupyter Book."""
        repository = config.get("repository") or {}
        launch = config.get("launch_buttons") or {}
        sphinx = (config.get("sphinx") or {}).get("config") or {}
        return cls(
            repository_url=str(repository.get("url", "")).rstrip("/"),
            student_branch=str(sphinx.get("course_student_branch") or DEFAULT_STUDENT_BRANCH),
            book_url=_with_slash(str((config.get("html") or {}).get("baseurl", ""))),
            binderhub_url=str(launch.get("binderhub_url") or "").rstrip("/"),
            colab_url=str(launch.get("colab_url") or "").rstrip("/"),
            jupyterhub_url=str(launch.get("jupyterhub_url") or "").rstrip("/"),
        )

    @classmethod
    def load(cls, root: Path = ROOT) -> Settings:
        import yaml

        return cls.from_config(yaml.safe_load((root / "_config.yml").read_text("utf-8")))

    @property
    def github(self) -> tuple[str, str] | None:
        """(owner, name) when the repository is on GitHub, else None."""
        parsed = urlparse(self.repository_url)
        parts = [p for p in parsed.path.split("/") if p]
        if parsed.netloc.lower() != "github.com" or len(parts) != 2:
            return None
        return parts[0], parts[1].removesuffix(".git")

    @property
    def repository_name(self) -> str:
        return (
            urlparse(self.repository_url).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        )


def _with_slash(url: str) -> str:
    return url if not url or url.endswith("/") else url + "/"


def notebook_path(assignment: str, notebook: str) -> str:
    """The exercise notebook's path in the repository, e.g.
    ``exercises/a02_classification/classification.ipynb``."""
    return f"{EXERCISES}/{assignment}/{notebook}.ipynb"


def repository_url(settings: Settings, path: str) -> str:
    """The file at ``path`` on the student branch, as the repository's web page shows it."""
    return f"{settings.repository_url}/blob/{settings.student_branch}/{path}"


def binder_url(settings: Settings, path: str) -> str:
    """mybinder.org (or another BinderHub) building the student branch and opening ``path``
    in JupyterLab."""
    if settings.github:
        owner, name = settings.github
        spec = f"gh/{owner}/{name}/{quote(settings.student_branch, safe='')}"
    else:
        spec = f"git/{quote(settings.repository_url, safe='')}/{settings.student_branch}"
    return f"{settings.binderhub_url}/v2/{spec}?{urlencode({'labpath': path})}"


def colab_url(settings: Settings, path: str) -> str | None:
    """Colab opening the notebook from GitHub (Colab reads notebooks from GitHub only)."""
    if not settings.github or not settings.colab_url:
        return None
    owner, name = settings.github
    return f"{settings.colab_url}/github/{owner}/{name}/blob/{settings.student_branch}/{path}"


def jupyterhub_url(settings: Settings, path: str) -> str | None:
    """An nbgitpuller link: the hub clones (or updates) the student branch into the user's
    home, then opens ``path`` in JupyterLab.  None when no hub is configured."""
    if not settings.jupyterhub_url:
        return None
    query = urlencode(
        {
            "repo": settings.repository_url,
            "branch": settings.student_branch,
            "urlpath": f"lab/tree/{settings.repository_name}/{path}",
        }
    )
    return f"{settings.jupyterhub_url}/hub/user-redirect/git-pull?{query}"


def package_url(settings: Settings) -> str:
    """What ``pip install`` takes to install the course package from the student branch."""
    return f"git+{settings.repository_url}@{settings.student_branch}"


def chapter_url(settings: Settings, chapter: str, anchor: str = "") -> str:
    """The rendered chapter ``book/<chapter>.md`` under the published book."""
    return f"{settings.book_url}book/{chapter}.html" + (f"#{anchor}" if anchor else "")


# A Markdown link to a chapter: relative (``../../book/focal-loss.md``) or absolute under
# some earlier book address (``https://.../book/focal-loss.html#x``).
CHAPTER_LINK = re.compile(
    r"\]\((?P<target>(?:[^()\s]*/)?book/(?P<chapter>[a-z0-9-]+)\.(?:md|html)"
    r"(?:#(?P<anchor>[^()\s]*))?)\)"
)


def localise_chapter_links(text: str, settings: Settings, chapters: set[str]) -> str:
    """``text`` with every link to a chapter of the book pointing at the published page."""

    def replace(match: re.Match) -> str:
        if match["chapter"] not in chapters:
            return match[0]
        return f"]({chapter_url(settings, match['chapter'], match['anchor'] or '')})"

    return CHAPTER_LINK.sub(replace, text)


def book_chapters(root: Path = ROOT) -> set[str]:
    return {path.stem for path in (root / "book").glob("*.md")}


# ---------------------------------------------------------------------------------------
# The Sphinx side: the ``assignment`` directive.
# ---------------------------------------------------------------------------------------


def read_assignment(root: Path, assignment: str) -> list[tuple[str, str, list[str]]]:
    """(notebook name, title, functions asked for) of each released notebook of
    ``assignment``, read from ``exercises/`` (present in every checkout, the student
    branch included)."""
    folder = root / EXERCISES / assignment
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        nb = json.loads(path.read_text("utf-8"))
        title, functions = "", []
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not title and cell["cell_type"] == "markdown":
                heading = re.search(r"^#\s+(.+)$", source, re.MULTILINE)
                title = heading[1].strip() if heading else ""
            if cell["cell_type"] == "code" and meta.get("solution"):
                functions.append(meta["grade_id"])
        found.append((path.stem, title, functions))
    return found


def _directive():
    from docutils import nodes
    from docutils.parsers.rst import directives
    from sphinx.errors import ExtensionError
    from sphinx.util.docutils import SphinxDirective

    class AssignmentDirective(SphinxDirective):
        """``{assignment} a02_classification`` with an optional ``:functions:`` list: what
        the chapter's exercise asks for and where to open it.

        The build fails when the assignment or one of the functions does not exist, so a
        chapter cannot promise an exercise that its assignment does not contain.
        """

        required_arguments = 1
        has_content = True
        option_spec = {"functions": directives.unchanged}  # noqa: RUF012 (docutils API)

        def run(self):
            assignment = self.arguments[0]
            root = Path(self.env.srcdir)
            notebooks = read_assignment(root, assignment)
            if not notebooks:
                raise ExtensionError(
                    f"{self.env.docname}: assignment {assignment!r}: no notebook in "
                    f"{EXERCISES}/{assignment}/ (run `python -m grading release`)"
                )
            available = [f for _, _, functions in notebooks for f in functions]
            wanted = (self.options.get("functions") or "").replace(",", " ").split()
            missing = [f for f in wanted if f not in available]
            if missing:
                raise ExtensionError(
                    f"{self.env.docname}: assignment {assignment!r} has no exercise "
                    f"{', '.join(missing)} (it asks for: {', '.join(available)})"
                )
            settings = Settings.from_config(self.config.course_settings)
            box = nodes.container(classes=["course-assignment"])
            for notebook, _, _ in notebooks:
                self.env.note_dependency(str(root / notebook_path(assignment, notebook)))
            for notebook, title, functions in notebooks:
                asked = [f for f in functions if not wanted or f in wanted]
                if not asked:
                    continue
                path = notebook_path(assignment, notebook)
                para = nodes.paragraph()
                para += nodes.strong(text=title or assignment)
                para += nodes.Text(" (")
                para += nodes.reference(
                    "",
                    "",
                    nodes.literal(text=path),
                    refuri=repository_url(settings, path),
                    classes=["course-notebook-link"],
                )
                para += nodes.Text(") asks for ")
                for i, function in enumerate(asked):
                    if i:
                        para += nodes.Text(", " if i < len(asked) - 1 else " and ")
                    para += nodes.literal(text=function)
                para += nodes.Text(".")
                box += para
                buttons = nodes.paragraph(classes=["course-launch"])
                buttons += nodes.Text("Open it on ")
                links = [
                    ("Binder", binder_url(settings, path), "binder"),
                    ("Colab", colab_url(settings, path), "colab"),
                    ("your course's JupyterHub", jupyterhub_url(settings, path), "jupyterhub"),
                ]
                links = [link for link in links if link[1]]
                for i, (label, url, kind) in enumerate(links):
                    if i:
                        buttons += nodes.Text(", " if i < len(links) - 1 else " or ")
                    buttons += nodes.reference(
                        "", label, refuri=url, classes=["course-launch-button", f"launch-{kind}"]
                    )
                buttons += nodes.Text(", or in a checkout with ")
                buttons += nodes.literal(text="make lab")
                buttons += nodes.Text(".")
                box += buttons
            if self.content:
                self.state.nested_parse(self.content, self.content_offset, box)
            return [box]

    return AssignmentDirective


def _settings_from_sphinx(app, config) -> None:
    """The same settings as :meth:`Settings.from_config`, from what Jupyter Book passed to
    Sphinx (the theme options, ``html_baseurl`` and ``course_student_branch``)."""
    theme = config.html_theme_options or {}
    launch = theme.get("launch_buttons") or {}
    config.course_settings = {
        "repository": {"url": theme.get("repository_url", "")},
        "launch_buttons": launch,
        "html": {"baseurl": config.html_baseurl},
        "sphinx": {"config": {"course_student_branch": config.course_student_branch}},
    }


def setup(app):
    app.add_config_value("course_student_branch", DEFAULT_STUDENT_BRANCH, "env")
    app.add_config_value("course_settings", {}, "env")
    app.connect("config-inited", _settings_from_sphinx)
    app.add_directive("assignment", _directive())
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
