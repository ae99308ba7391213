"""Build submissions from the released notebooks: the bundled demo and the test fixtures.

``python -m grading.demo build`` rewrites ``grading/demo/``, which ``python -m grading.demo
install`` (run by ``make grade-demo``) copies into the submitted folder: an honest student,
one with a typical mistake, one who tampers with the tests, and one whose file is not a
notebook.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import nbformat

from .course import DEMO_DIR, SOURCE_DIR, SUBMITTED_DIR
from .release import answered_version, render


def submission(assignment: str, replace: dict[str, str] | None = None, notebook: str | None = None):
    """The released notebook with every solution filled in (honest), except ``replace``."""
    path = next((SOURCE_DIR / assignment).glob(f"{notebook or '*'}.ipynb"))
    nb = answered_version(nbformat.read(str(path), as_version=4), replace)
    return path.name, render(nb)


LOG_OF_SOFTMAX = '''
def cross_entropy(
    logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"
):
    """Softmax cross-entropy, written the textbook way: log(softmax(x))."""
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.shape[class_dim]
    log_probs = torch.log(torch.softmax(logits, class_dim))
    shape = [1] * logits.dim()
    shape[class_dim] = num_classes
    w = torch.ones(shape, dtype=logits.dtype) if weight is None else weight.view(shape)
    eps = label_smoothing
    if target.is_floating_point():
        soft = target * (1 - eps) + eps / num_classes
        return reduce_loss(-(w * soft * log_probs).sum(class_dim), reduction)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    index_shape = [1] * (safe.dim() + 1)
    index_shape[class_dim] = num_classes
    classes = torch.arange(num_classes, device=logits.device).view(index_shape)
    onehot = (safe.unsqueeze(class_dim) == classes).to(logits.dtype)
    keep = valid.to(logits.dtype)
    loss = -(w * ((1 - eps) * onehot + eps / num_classes) * log_probs).sum(class_dim) * keep
    if reduction != "mean":
        return reduce_loss(loss, reduction)
    return loss.sum() / ((w * onehot).sum(class_dim) * keep).sum()
'''

TAMPER_HARNESS = '''
import cvloss_ref.testing

cvloss_ref.testing.assert_loss_matches = lambda *args, **kwargs: None  # every test "passes"
assert_loss_matches = cvloss_ref.testing.assert_loss_matches
get_ipython().user_ns["assert_loss_matches"] = assert_loss_matches


def hinge_loss(scores, target, margin=1.0, reduction="mean"):
    """Wrong on purpose: no margin."""
    return reduce_loss(torch.clamp(-target * scores, min=0), reduction)
'''


def build_demo() -> None:
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    assignment = "a02_classification"
    students = {
        "alice": {},
        "bob": {"cross_entropy": LOG_OF_SOFTMAX},
        "carol": {"hinge_loss": TAMPER_HARNESS},
    }
    for student, replace in students.items():
        name, text = submission(assignment, replace)
        folder = DEMO_DIR / student / assignment
        folder.mkdir(parents=True)
        (folder / name).write_text(text, encoding="utf-8")
    # dave's "notebook" is an image: install_demo() writes it (ruff would refuse to lint
    # a broken .ipynb kept in the repository).


def install_demo() -> Path:
    """Copy the bundled demo submissions into the submitted folder, plus dave's broken
    file (an image named ``.ipynb``); returns the folder."""
    shutil.copytree(DEMO_DIR, SUBMITTED_DIR, dirs_exist_ok=True)
    broken = SUBMITTED_DIR / "dave" / "a02_classification" / "classification.ipynb"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a notebook")
    return SUBMITTED_DIR


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The bundled demo submissions.")
    parser.add_argument(
        "action",
        choices=["build", "install"],
        help="build: rewrite grading/demo/ from the sources; install: copy the demo "
        "submissions into the submitted folder (what `make grade-demo` grades)",
    )
    args = parser.parse_args(argv)
    if args.action == "build":
        build_demo()
        print(f"wrote {Path(DEMO_DIR)}")
    else:
        print(f"installed the demo submissions in {install_demo()}")


if __name__ == "__main__":
    main()
