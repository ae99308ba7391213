"""``make lab`` as a student meets it, in headless Chromium.

The student lab (``JUPYTER_CONFIG_DIR=lab/student``) opens an exercise notebook with
nbgrader's Validate button and assignment list, and without the instructors' Create
Assignment toolbar, formgrader or course list; the instructors' lab (no such folder) has
them, which shows the check can tell the two apart.  Pressing Validate on the released
notebook runs it and reports the unanswered exercises.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_book_browser import _evaluate, _open, browser  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "a02_classification/classification.ipynb"
START_TIMEOUT_S = 120
VALIDATE_TIMEOUT_S = 240
pytestmark = pytest.mark.slow

# Waits for JupyterLab to open the notebook, then reports what the student sees.
REPORT_JS = """
(async () => {
  const until = async (test, ms) => {
    const end = Date.now() + ms;
    while (!test()) {
      if (Date.now() > end) { return false; }
      await new Promise((done) => setTimeout(done, 250));
    }
    return true;
  };
  await until(() => window.jupyterapp && document.querySelector('.jp-Notebook'), 90000);
  await until(() => document.querySelector('.validate-button'), 30000);
  const app = window.jupyterapp;
  const has = (id) => Boolean(app && app.commands.hasCommand(id));
  return {
    notebook: Boolean(document.querySelector('.jp-Notebook')),
    validate_button: Boolean(document.querySelector('.validate-button')),
    assignment_list: has('nbgrader:open-assignment-list'),
    create_assignment: has('nbgrader:open-create-assignment'),
    formgrader: has('nbgrader:open-formgrader'),
    course_list: has('nbgrader:open-course-list'),
  };
})()
"""

# Presses Validate and waits for nbgrader's dialog with the result.
VALIDATE_JS = """
(async () => {
  document.querySelector('.validate-button').click();
  const end = Date.now() + TIMEOUT_MS;
  while (Date.now() < end) {
    const dialog = document.querySelector('.jp-Dialog');
    if (dialog && !/Validating/i.test(dialog.innerText)) { return dialog.innerText; }
    await new Promise((done) => setTimeout(done, 500));
  }
  return null;
})()
""".replace("TIMEOUT_MS", str(VALIDATE_TIMEOUT_S * 1000))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab(config_dir: Path | None, root_dir: Path, tmp_path: Path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    if config_dir is not None:
        env["JUPYTER_CONFIG_DIR"] = str(config_dir)
    else:
        env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "instructor-config")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp_path / "workspaces")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(tmp_path / "settings")
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "jupyter"),
            "lab",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.token=course",
            "--LabApp.expose_app_in_browser=True",
            f"--ServerApp.root_dir={root_dir}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "lab.log", "w"),
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"jupyter lab did not start: {(tmp_path / 'lab.log').read_text()}")
            time.sleep(0.5)
    return process, f"http://127.0.0.1:{port}"


def _stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _see(browser, url):  # noqa: F811 (the fixture)
    target, session = _open(browser, url)
    try:
        return _evaluate(browser, session, REPORT_JS), target, session
    except Exception:
        browser.send("Target.closeTarget", {"targetId": target})
        raise


def test_make_lab_shows_students_their_tools_only(browser, tmp_path):  # noqa: F811
    if not (ROOT / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("no .venv (make venv)")
    work = tmp_path / "exercises"
    shutil.copytree(ROOT / "exercises", work)

    process, base = _lab(ROOT / "lab" / "student", work, tmp_path / "student")
    try:
        report, target, session = _see(browser, f"{base}/lab/tree/{NOTEBOOK}?token=course")
        try:
            assert report["notebook"] and report["validate_button"], report
            assert report["assignment_list"], report
            assert not report["create_assignment"], report
            assert not report["formgrader"] and not report["course_list"], report
            dialog = _evaluate(browser, session, VALIDATE_JS)
        finally:
            browser.send("Target.closeTarget", {"targetId": target})
    finally:
        _stop(process)
    # The released notebook has every exercise unanswered: Validate runs it and says so.
    assert dialog is not None, "Validate showed no result"
    assert "NotImplementedError" in dialog or "failed" in dialog.lower(), dialog

    process, base = _lab(None, work, tmp_path / "instructor")
    try:
        report, target, _ = _see(browser, f"{base}/lab/tree/{NOTEBOOK}?token=course")
        browser.send("Target.closeTarget", {"targetId": target})
    finally:
        _stop(process)
    assert report["create_assignment"] and report["formgrader"], report
