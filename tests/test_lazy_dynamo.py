"""The sandboxed processes of a grading run do not import TorchDynamo for a meta check
(``grading/_lazy_dynamo.py``: 1.4 s of CPU each), behave as torch does once something
compiles, and the verifier's scripts are copied afresh on every start, never through a
link that the last process left."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from grading.remote import RemoteFunction, Verifier
from grading.sandbox import bwrap_works
from tests._env import IN_CI, NO_BWRAP

ROOT = Path(__file__).resolve().parents[1]
GRADING = ROOT / "grading"

needs_bwrap = pytest.mark.skipif(not (bwrap_works() or IN_CI), reason=NO_BWRAP)

CHUNK = """
import sys
import torch

def ce(x, y):
    return torch.nn.functional.cross_entropy(x, y) * (y != -100).float().mean()

def dynamo_loaded(x):
    return torch.tensor(float("torch._dynamo" in sys.modules))

def compiled(x):
    return torch.compile(lambda t: (t * 2 + 1).sum(), backend="eager")(x)
"""


@needs_bwrap
def test_a_meta_check_in_the_sandboxed_verifier_leaves_dynamo_unimported(tmp_path):
    verifier = Verifier(tmp_path, [("support", ""), ("ce", CHUNK)], unsafe=False, timeout=60)
    try:
        verifier.start()
        assert not verifier.load_errors
        ce = RemoteFunction(verifier, "ce")
        loaded = RemoteFunction(verifier, "dynamo_loaded")
        meta = ce(torch.randn(4, 5, device="meta"), torch.zeros(4, dtype=torch.long, device="meta"))
        assert meta.device.type == "meta" and meta.shape == ()
        assert loaded(torch.zeros(1)).item() == 0.0
        x, y = torch.randn(6, 5, dtype=torch.float64), torch.randint(0, 5, (6,))
        assert torch.equal(ce(x, y), F.cross_entropy(x, y))
        # Once something compiles, Dynamo is there and torch's own path is taken.
        x = torch.arange(4.0)
        assert RemoteFunction(verifier, "compiled")(x).item() == (x * 2 + 1).sum().item()
        assert loaded(torch.zeros(1)).item() == 1.0
    finally:
        verifier.close()


def _kernel_run(folder: Path, cells: list[str]) -> list[str]:
    """What each cell printed, run by ``_nbrunner.py`` (not sandboxed: the kernel's start
    is what is tested)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nbformat.write(nb, str(folder / "graded.ipynb"))
    (folder / "job.json").write_text(json.dumps({"timeout": 60, "tests": {}}))
    for script in ("_nbrunner.py", "_lazy_dynamo.py"):
        shutil.copy(GRADING / script, folder / script)
    subprocess.run(
        [sys.executable, "_nbrunner.py"], cwd=folder, check=True, timeout=300, capture_output=True
    )
    executed = nbformat.read(str(folder / "executed.ipynb"), as_version=4)
    return ["".join(o.get("text", "") for o in cell.outputs) for cell in executed.cells]


def test_the_notebook_runs_kernel_checks_meta_tensors_without_dynamo(tmp_path):
    printed = _kernel_run(
        tmp_path,
        [
            "import sys, torch\n"
            "x = torch.zeros(3, dtype=torch.long, device='meta')\n"
            "print((x != -100).shape, 'torch._dynamo' in sys.modules)",
            "f = torch.compile(lambda t: (t * 2 + 1).sum(), backend='eager')\n"
            "print(f(torch.arange(4.0)).item(), 'torch._dynamo' in sys.modules)\n"
            "print((x != -100).shape)",
        ],
    )
    assert printed == ["torch.Size([3]) False\n", "16.0 True\ntorch.Size([3])\n"]


def test_the_stand_in_gives_way_to_torchs_disabled_function_once_dynamo_is_imported():
    code = f"""
import sys, torch
exec(open({str(GRADING / "_lazy_dynamo.py")!r}).read(), {{}})
import torch._compile
x = torch.zeros(3, dtype=torch.long, device="meta")
x != -100
wrapped = [f for f in __import__("gc").get_objects()
           if type(f).__name__ == "function" and getattr(f, "__code__", None) is
           torch._compile._disable_dynamo(lambda: None).__code__]
assert wrapped, "no wrapper found"
fns = [w.__closure__[w.__code__.co_freevars.index("fn")].cell_contents for w in wrapped]
stand_ins = [f for f in fns if f.__dynamo_disable.__qualname__.endswith("stand_in.<locals>.call")]
assert len(stand_ins) == len(fns), (len(stand_ins), len(fns))
assert "torch._dynamo" not in sys.modules
import torch._dynamo
x != -100
assert not any(
    f.__dynamo_disable.__qualname__.endswith("stand_in.<locals>.call") for f in stand_ins
    if f.__name__ == "ne"), "ne still calls the stand-in"
print(len(fns))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) > 100  # every reference wrapper of torch._refs has one


@needs_bwrap
def test_a_restarted_verifier_does_not_write_through_a_link_its_last_process_left(tmp_path):
    outside = tmp_path / "instructor-file.txt"
    outside.write_text("the instructor's\n")
    private = tmp_path / "verify"
    private.mkdir()
    plant = f"""
import os
for name in ("_verifier.py", "_lazy_dynamo.py"):
    os.remove(name)
    os.symlink({str(outside)!r}, name)
os._exit(1)
"""
    chunks = [("support", ""), ("plant", plant), ("ce", CHUNK)]
    verifier = Verifier(private, chunks, unsafe=False, timeout=60)
    try:
        verifier.start()  # the planting chunk ends the process; the verifier starts again
        assert "plant" in verifier.load_errors
        assert RemoteFunction(verifier, "dynamo_loaded")(torch.zeros(1)).item() == 0.0
    finally:
        verifier.close()
    assert outside.read_text() == "the instructor's\n"
    assert not (private / "_verifier.py").is_symlink()
