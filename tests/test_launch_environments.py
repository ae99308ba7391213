"""The exercises run where the launch buttons land, checked offline from the files alone.

* **Binder** builds ``binder/requirements.txt`` and runs ``binder/postBuild`` in the
  student branch's files.  Here a fresh virtual environment is built from the requirements
  file alone, postBuild runs in a copy of the student files, and every exercise's set-up
  and visible-test cells run in it against the instructor's solutions.
* **Colab** has torch but not the course package: the exercises' first cell installs it.
  Here it runs in the same environment before the package is installed, once from a local
  wheel with pip's index turned off, and once from inside a checkout, where it must not
  touch the network at all.

The environment is built once for the module (torch and nbgrader come from pip's cache
after ``make venv``); it lives in the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

from grading.release import INSTALL_ID, answered_version
from grading.student import STUDENT_PATHS

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("a*/*.ipynb"))
INSTALL_TIMEOUT_S = 1500
pytestmark = pytest.mark.slow


def _student_copy(target: Path) -> Path:
    """The working tree's student files (what make student-release commits), copied."""
    target.mkdir()
    caches = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints", "_static")
    for name in STUDENT_PATHS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=caches)
        elif source.is_file():
            shutil.copy2(source, target / name)
    return target


def _run(command, env_dir: Path, cwd: Path, extra_env=None, timeout=600):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(extra_env or {})
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def binder(tmp_path_factory):
    """(environment, student files): a venv with binder/requirements.txt installed only."""
    base = tmp_path_factory.mktemp("binder")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    files = _student_copy(base / "student")
    result = _run(
        [
            str(env_dir / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(files / "binder" / "requirements.txt"),
        ],
        env_dir,
        files,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return env_dir, files


def _python(env_dir: Path) -> str:
    return str(env_dir / "bin" / "python")


def _importable(env_dir: Path, cwd: Path) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('cvloss_ref') is None)"
    return _run([_python(env_dir), "-c", probe], env_dir, cwd).returncode == 0


def _install_cell(package: str | None = None) -> str:
    nb = nbformat.read(str(SOLUTIONS[0]), as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == INSTALL_ID]
    source = cell.source
    if package is not None:
        start = source.index('PACKAGE = "')
        end = source.index('"\n', start)
        source = source[:start] + f"PACKAGE = {package!r}" + source[end + 1 :]
    return source + "\nimport cvloss_ref\nprint(cvloss_ref.__file__)\n"


def _run_install_cell(env_dir: Path, package: str, cwd: Path):
    """The exercises' install cell with ``package`` as its address, pip's index off."""
    cell = _install_cell(package)
    return _run([_python(env_dir), "-c", cell], env_dir, cwd, {"PIP_NO_INDEX": "1"})


def _uninstall(env_dir: Path, cwd: Path) -> None:
    _run([_python(env_dir), "-m", "pip", "uninstall", "-y", "-q", "cvloss_ref"], env_dir, cwd)


def test_colab_install_cell_installs_the_package_where_it_is_missing(binder, tmp_path):
    env_dir, files = binder
    _uninstall(env_dir, files)
    elsewhere = tmp_path / "colab"  # no checkout above it, as on Colab
    elsewhere.mkdir()
    assert not _importable(env_dir, elsewhere)

    # From a wheel, with pip's index off: the cell needs nothing but pip and the package.
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("cvloss_ref-*.whl")
    result = _run_install_cell(env_dir, str(wheel), elsewhere)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(env_dir) in result.stdout  # installed into the environment, not the checkout
    assert _importable(env_dir, elsewhere)

    # Present: the cell does nothing (pip would fail here, with no index and no package).
    result = _run_install_cell(env_dir, "no-such-package-anywhere", elsewhere)
    assert result.returncode == 0, result.stderr[-3000:]
    _uninstall(env_dir, files)

    # Inside a checkout, without the package installed: the checkout's package is used,
    # offline (an unreachable package address proves pip is not called).
    cwd = files / "exercises" / "a01_information"
    result = _run_install_cell(env_dir, "git+https://invalid.invalid/none@x", cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == str(files / "cvloss_ref" / "__init__.py")


def test_binder_environment_runs_every_exercise(binder, tmp_path):
    """postBuild on the student files, then each exercise's set-up, the solutions and the
    visible tests, as a student who solved everything runs them on Binder."""
    env_dir, files = binder
    result = _run(["bash", str(files / "binder" / "postBuild")], env_dir, files, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert _importable(env_dir, outside)  # installed, not found through the checkout
    # postBuild hid nbgrader's instructor tools and kept the student ones.
    listing = _run([str(env_dir / "bin" / "jupyter"), "labextension", "list"], env_dir, files)
    report = listing.stdout + listing.stderr
    for plugin in ("create-assignment", "formgrader", "course-list"):
        assert f"@jupyter/nbgrader:{plugin}" in report.split("Disabled extensions:")[-1], report

    failures = []
    for path in SOLUTIONS:
        nb = answered_version(nbformat.read(str(path), as_version=4))
        script = "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")
        target = tmp_path / f"{path.parent.name}.py"
        target.write_text(script, encoding="utf-8")
        cwd = files / "exercises" / path.parent.name
        run = _run([_python(env_dir), str(target)], env_dir, cwd, {"PIP_NO_INDEX": "1"})
        if run.returncode != 0:
            failures.append(f"{path.parent.name}:\n{run.stderr[-2000:]}")
    assert not failures, "\n".join(failures)
