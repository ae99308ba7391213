"""``autograde --scheduler``: grading on a real Dask cluster on 127.0.0.1.

Each test starts its own cluster (``dask scheduler`` and ``dask worker`` processes, one
thread each, started from the course checkout with ``PYTHONPATH`` set to it, as
grading/README.md says), so that killing a worker or the scheduler touches no other test.
The comparison for scores is the local path's gradebook of the same submissions
(``tests/_demo_batches.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grading import engine_dask, gradebook
from grading.sandbox import BWRAP, bwrap_works
from tests import _demo_batches as demo
from tests import _grading_batch as batches
from tests._env import IN_CI, NO_BWRAP

START_S = 120


@dataclass
class Cluster:
    folder: Path
    env: dict
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    address: str = ""

    def start_scheduler(self, pythonpath: bool = True) -> None:
        schedule = self.folder / "scheduler.json"
        schedule.unlink(missing_ok=True)
        command = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host"]
        command += ["127.0.0.1", "--port", "0", "--no-dashboard"]
        command += ["--scheduler-file", str(schedule)]
        env = dict(self.env)
        if pythonpath:
            env["PYTHONPATH"] = str(batches.ROOT)
        self.scheduler = self._start(command, "scheduler", cwd=self.folder, env=env)
        deadline = time.monotonic() + START_S
        while not schedule.exists():
            assert self.scheduler.poll() is None, self._log("scheduler")
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written at once, but let it be complete
        self.address = json.loads(schedule.read_text())["address"]

    def start_worker(
        self, cwd: Path = batches.ROOT, pythonpath: bool = True, extra_path: Path | None = None
    ) -> None:
        command = [sys.executable, "-m", "distributed.cli.dask_worker", self.address]
        command += ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]
        env = dict(self.env)
        paths = [str(extra_path)] if extra_path else []
        if pythonpath:
            paths.append(str(batches.ROOT))
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        name = f"worker{len(self.workers)}"
        self.workers.append(self._start(command, name, cwd=cwd, env=env))

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=START_S, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=START_S)

    def _start(self, command, name, cwd=None, env=None) -> subprocess.Popen:
        with open(self.folder / f"{name}.log", "wb") as log:  # the process has its own copy
            return subprocess.Popen(
                command,
                cwd=cwd or self.folder,
                env=env or self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def cluster_for(tmp_path):
    """``cluster_for(batch, workers=2)``: a scheduler and workers whose sandboxes'
    folders are under the batch's TMPDIR (so that :func:`batches.survivors` sees them);
    the workers themselves are not marked as the batch's."""
    made = []

    def make(batch: batches.Batch, workers: int = 2, start: bool = True) -> Cluster:
        env = {k: v for k, v in batch.env.items() if k != batches.MARKER}
        cluster = Cluster(tmp_path / f"cluster{len(made)}", env)
        cluster.folder.mkdir()
        made.append(cluster)
        if start:
            cluster.start_scheduler()
            for _ in range(workers):
                cluster.start_worker()
            if workers:
                cluster.wait_for_workers(workers)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sandboxes_under(pids: set[int]) -> list[int]:
    """The bubblewrap processes whose parent is one of ``pids`` and that grade (the
    notebook run or the verification; not the preflight's probe of bubblewrap)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        grading = {b"_nbrunner.py", b"_verifier.py"} & set(argv)
        if ppid in pids and argv[0].decode(errors="replace") == BWRAP and grading:
            found.append(int(entry))
    return found


def _wait_for_sandbox(cluster: Cluster, grader: subprocess.Popen, limit: float = 600) -> int:
    """The pid of a worker that runs a sandbox, once one does."""
    pids = {w.pid for w in cluster.workers if w.poll() is None}
    deadline = time.monotonic() + limit
    while True:
        for sandbox in _sandboxes_under(pids):
            ppid = int(Path(f"/proc/{sandbox}/stat").read_text().rsplit(")", 1)[1].split()[1])
            return ppid
        assert grader.poll() is None, grader.communicate()
        assert time.monotonic() < deadline, "no worker started a sandbox"
        time.sleep(0.2)


def _grade(batch, cluster, *extra) -> subprocess.Popen:
    command = demo.autograde_command("autograde", demo.A02, "--scheduler", cluster.address)
    return subprocess.Popen(
        [*command, "--no-progress", *extra],
        cwd=batches.ROOT,
        env=batch.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


# --------------------------------------------------------------------- the preflight


def test_an_unreachable_scheduler_is_refused_at_once():
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(engine_dask.ClusterUnavailable, match="cannot reach the Dask scheduler"):
        engine_dask.DaskEngine(address, connect_s=3)
    assert time.monotonic() - started < 30


def test_a_scheduler_or_workers_that_cannot_import_the_checkout_or_differ_are_refused(
    tmp_path, cluster_for, monkeypatch
):
    batch = batches.new_batch(tmp_path)
    blind = cluster_for(batch, start=False)
    blind.start_scheduler(pythonpath=False)
    blind.start_worker()
    blind.wait_for_workers(1)
    with pytest.raises(engine_dask.ClusterUnavailable, match=r"scheduler .* cannot import"):
        engine_dask.DaskEngine(blind.address)
    blind.stop()
    cluster = cluster_for(batch, workers=0)
    cluster.start_worker(cwd=tmp_path, pythonpath=False)
    cluster.wait_for_workers(1)
    with pytest.raises(engine_dask.ClusterUnavailable, match=r"worker.* cannot import the course"):
        engine_dask.DaskEngine(cluster.address)
    cluster.workers.pop().kill()
    # One worker as it should be, one whose nbclient is another version.
    fake = _other_nbclient(tmp_path)
    cluster.start_worker()
    cluster.start_worker(extra_path=fake)
    cluster.wait_for_workers(2)
    with pytest.raises(engine_dask.ClusterUnavailable) as refused:
        engine_dask.DaskEngine(cluster.address)
    message = str(refused.value)
    assert "these Dask workers differ from the grader" in message
    assert f"nbclient 0.0.1 (grader: {engine_dask._version('nbclient')})" in message
    assert message.count("tcp://127.0.0.1:") == 1  # the other worker is not named
    # The grader's checkout differs from the cluster's (as if a file had been edited).
    monkeypatch.setattr(engine_dask, "_code_digest", lambda: "0" * 64)
    with pytest.raises(engine_dask.ClusterUnavailable, match=r"scheduler .* differs") as refused:
        engine_dask.DaskEngine(cluster.address)
    assert "(grader: 000000000000)" in str(refused.value)


# --------------------------------------------------------------------- grading


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_a_cluster_batch_survives_a_killed_worker_and_gives_the_local_gradebook(
    tmp_path, tmp_path_factory, cluster_for
):
    local = demo.local(tmp_path_factory)
    batch = batches.new_batch(tmp_path)
    demo.install(batch)
    cluster = cluster_for(batch)
    grader = _grade(batch, cluster)
    victim = _wait_for_sandbox(cluster, grader)
    os.kill(victim, signal.SIGKILL)  # a worker lost mid-submission, its sandboxes with it
    out, err = grader.communicate(timeout=1500)
    assert grader.returncode == 0, err
    db_url = f"sqlite:///{batch.folder / 'gradebook.db'}"
    assert gradebook.scores(db_url) == local["scores"]
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == list(demo.STUDENTS)  # each submission once
    assert batches.survivors(batch) == []


def _other_nbclient(tmp_path: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes a worker report nbclient 0.0.1."""
    fake = tmp_path / "other-packages"
    (fake / "nbclient-0.0.1.dist-info").mkdir(parents=True, exist_ok=True)
    (fake / "nbclient-0.0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nbclient\nVersion: 0.0.1\n"
    )
    return fake


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_a_worker_that_joins_mid_batch_and_differs_is_skipped(
    tmp_path, tmp_path_factory, cluster_for
):
    """The preflight saw one good worker; a worker with another nbclient joins while the
    batch runs and takes a queued submission: the task refuses to grade there, the
    submission is graded by the good worker, and the batch ends as the local one does."""
    local = demo.local(tmp_path_factory)
    batch = batches.new_batch(tmp_path)
    demo.install(batch)
    cluster = cluster_for(batch, workers=1)
    grader = _grade(batch, cluster)
    _wait_for_sandbox(cluster, grader)  # the preflight is over: the canary is graded
    cluster.start_worker(extra_path=_other_nbclient(tmp_path))
    out, err = grader.communicate(timeout=1500)
    assert grader.returncode == 0, err
    skipped = [line for line in err.splitlines() if line.startswith("skipped Dask worker")]
    assert len(skipped) == 1, err  # said once, however many of its tasks were refused
    assert f"nbclient 0.0.1 (grader: {engine_dask._version('nbclient')})" in skipped[0]
    db_url = f"sqlite:///{batch.folder / 'gradebook.db'}"
    assert gradebook.scores(db_url) == local["scores"]
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == list(demo.STUDENTS)  # each submission once
    assert batches.survivors(batch) == []


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_ctrl_c_on_a_cluster_batch_ends_the_sandboxes_on_the_workers(tmp_path, cluster_for):
    batch = batches.new_batch(tmp_path)
    demo.install(batch)
    cluster = cluster_for(batch)
    grader = _grade(batch, cluster)
    _wait_for_sandbox(cluster, grader)
    os.killpg(grader.pid, signal.SIGINT)
    interrupted = time.monotonic()
    _, err = grader.communicate(timeout=120)
    assert time.monotonic() - interrupted < 30, "Ctrl-C took more than 30 s"
    assert grader.returncode == 130, err
    assert err.strip().splitlines() == [
        "interrupted: 0 submission(s) graded and recorded, 2 not graded; run the same command "
        "again to grade only those"
    ]
    assert batches.survivors(batch) == []  # no sandbox left on the workers
    assert all(worker.poll() is None for worker in cluster.workers)  # the cluster lives on


@pytest.mark.slow
@pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)
def test_a_lost_scheduler_stops_the_command_and_a_rerun_grades_what_is_missing(
    tmp_path, cluster_for
):
    batch = batches.new_batch(tmp_path)
    demo.install(batch)
    cluster = cluster_for(batch)
    grader = _grade(batch, cluster)
    first = batch.folder / "autograded"
    deadline = time.monotonic() + 900
    while not list(first.glob(f"*/{demo.A02}/results.json")):
        assert grader.poll() is None, grader.communicate()
        assert time.monotonic() < deadline, "no submission was recorded in 900 s"
        time.sleep(0.2)
    done = {p.parent.parent.name for p in first.glob(f"*/{demo.A02}/results.json")}
    if done == set(demo.STUDENTS):
        pytest.skip("both submissions finished before the scheduler could be lost")
    cluster.scheduler.kill()
    lost = time.monotonic()
    _, err = grader.communicate(timeout=300)
    assert grader.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("error: lost the Dask scheduler at tcp://")
    assert "Traceback" not in err
    assert time.monotonic() - lost < 120
    for worker in cluster.workers:
        worker.kill()
    assert batches.survivors(batch) == []

    again = cluster_for(batch)
    rerun = _grade(batch, again)
    _, err = rerun.communicate(timeout=1500)
    assert rerun.returncode == 0, err
    assert f"{len(done)} submission(s) already graded" in err
    db_url = f"sqlite:///{batch.folder / 'gradebook.db'}"
    assert gradebook.recorded(demo.A02, db_url) == set(demo.STUDENTS)
