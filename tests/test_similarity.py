"""Copy detection (``grading/similarity.py``) and its part of ``python -m grading report``.

The solutions here are a01's functions: two honest, independent implementations (erin and
frank, checked against ``cvloss_ref`` below), the reference's source pasted with its names
renamed, and the instructor's solution renamed.  No sandbox, no autograde: ``report`` reads
the submitted notebooks only.
"""

from __future__ import annotations

import inspect
import json
import math
import re

import pytest
import torch

import cvloss_ref
from cvloss_ref import information
from grading import cli, similarity
from grading.notebooks import nbgrader_meta, source_notebooks
from grading.release import render, student_version

ASSIGNMENT = "a01_information"

ERIN = {
    "entropy": '''def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Entropy of the distributions p along dim, in units of log(base)."""
    # log of p where p > 0, and 0 elsewhere (0 log 0 = 0); no NaN in the gradient
    positive = p > 0
    logp = torch.log(torch.where(positive, p, torch.ones_like(p)))
    h = -(torch.where(positive, p * logp, torch.zeros_like(p))).sum(dim=dim)
    if base != math.e:
        h = h / math.log(base)
    return reduce_loss(h, reduction)
''',
    "cross_entropy_dist": '''def cross_entropy_dist(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Cross-entropy H(p, q) of the distributions along dim."""
    skip = (p == 0) & (q == 0)
    logq = torch.log(torch.where(skip, torch.ones_like(q), q))
    h = -(p * logq).sum(dim=dim)
    if base != math.e:
        h = h / math.log(base)
    return reduce_loss(h, reduction)
''',
    "kl_divergence": '''def kl_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """KL divergence KL(p || q) of the distributions along dim."""
    return reduce_loss(
        cross_entropy_dist(p, q, dim, "none", base=base) - entropy(p, dim, "none", base=base),
        reduction,
    )
''',
    "js_divergence": '''def js_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Jensen-Shannon divergence of the distributions along dim."""
    m = 0.5 * (p + q)
    h_m = entropy(m, dim, "none", base=base)
    h_p = entropy(p, dim, "none", base=base)
    h_q = entropy(q, dim, "none", base=base)
    return reduce_loss(h_m - 0.5 * (h_p + h_q), reduction)
''',
}

FRANK = {
    "entropy": '''def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Entropy of the distributions p along dim, in units of log(base)."""
    total = 0
    for i in range(p.shape[dim]):
        pi = p.select(dim, i)
        mask = pi > 0
        total = total - torch.where(mask, pi * torch.log(torch.where(mask, pi, 1.0)), 0.0)
    return reduce_loss(total / math.log(base), reduction)
''',
    "cross_entropy_dist": '''def cross_entropy_dist(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Cross-entropy H(p, q) of the distributions along dim."""
    pm, qm = torch.movedim(p, dim, -1), torch.movedim(q, dim, -1)
    zero = (pm == 0) * (qm == 0)
    out = -torch.einsum("...k,...k->...", pm, torch.log(qm.masked_fill(zero, 1.0)))
    return reduce_loss(out / math.log(base), reduction)
''',
    "kl_divergence": '''def kl_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """KL divergence KL(p || q) of the distributions along dim."""
    keep = p > 0
    ratio = torch.where(keep, p, 1.0) / torch.where(keep, q, 1.0)
    per = torch.where(keep, p * torch.log(ratio), 0.0).sum(dim) / math.log(base)
    return reduce_loss(per, reduction)
''',
    "js_divergence": '''def js_divergence(p, q, dim=-1, reduction="mean", *, base=math.e):
    """Jensen-Shannon divergence of the distributions along dim."""
    mid = (p + q) / 2
    a = kl_divergence(p, mid, dim, "none", base=base)
    b = kl_divergence(q, mid, dim, "none", base=base)
    return reduce_loss((a + b) / 2, reduction)
''',
}

#: cvloss_ref.entropy's helpers pasted in, renamed, validation dropped, upcast inlined.
EDITED_REFERENCE_COPY = '''def _plogp(t):
    # my helper
    nz = t != 0
    t_safe = torch.where(nz, t, torch.ones_like(t))
    return torch.where(nz, t * torch.log(t_safe), torch.zeros_like(t))


def _lb(b):
    b = float(b)
    if b == 1.0:
        raise ValueError("bad base")
    if math.isinf(b):
        raise ValueError(f"infinite base {b}")
    return math.log(b)


def entropy(p, dim=-1, reduction="mean", *, base=math.e):
    """Entropy of the distributions p along dim, in units of log(base)."""
    lb = _lb(base)
    out = 0.0 - _plogp(p.float() if p.dtype in (torch.float16, torch.bfloat16) else p).sum(dim)
    if lb != 1.0:
        out = out / lb
    return reduce_loss(out, reduction).to(p.dtype)
'''


def _renamed(code: str, names: dict[str, str]) -> str:
    """``code`` with whole-word identifiers renamed and comments removed."""
    code = re.sub(r"#[^\n]*", "", code)
    return re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: names[m.group()], code)


def _pasted_reference() -> str:
    """cvloss_ref.entropy and the helpers it needs, pasted in with every local name and
    helper renamed and the comments removed (a student who copies the reference)."""
    names = {
        "_xlogx": "plogp",
        "_log_base": "log_of",
        "nonzero": "nz",
        "safe_x": "guarded",
        "x": "t",
        "log_base": "lb",
        "values": "out",
    }
    helpers = [information._xlogx, information._log_base, information.entropy]
    return "\n\n".join(_renamed(inspect.getsource(f), names) for f in helpers)


def _instructor(function: str) -> str:
    (source,) = source_notebooks(ASSIGNMENT)
    (cell,) = [c for c in source.nb.cells if nbgrader_meta(c).get("grade_id") == function]
    return cell.source


def _stubs() -> dict[str, str]:
    (source,) = source_notebooks(ASSIGNMENT)
    cells = student_version(source.nb).cells
    return {
        nbgrader_meta(c)["grade_id"]: c.source for c in cells if nbgrader_meta(c).get("solution")
    }


def _submit(folder, students: dict[str, dict[str, str]]):
    """Write ``submitted/<student>/a01_information/information.ipynb`` for each student:
    the released notebook, with the given solution cells (the rest left as stubs)."""
    (source,) = source_notebooks(ASSIGNMENT)
    for student, answers in students.items():
        nb = student_version(source.nb)
        for cell in nb.cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if nbgrader_meta(cell).get("solution") and grade_id in answers:
                cell.source = answers[grade_id]
        target = folder / "submitted" / student / ASSIGNMENT
        target.mkdir(parents=True)
        (target / "information.ipynb").write_text(render(nb), encoding="utf-8")
    return folder / "submitted"


def _found(tmp_path, students):
    report = similarity.find_copies(ASSIGNMENT, _submit(tmp_path, students), tmp_path / "pages")
    return {(f.function, f.student, f.other): f for f in report.flags}


@pytest.mark.parametrize("student", [ERIN, FRANK])
def test_the_honest_fixtures_are_correct(student):
    """erin's and frank's solutions compute what cvloss_ref computes (they are honest)."""
    namespace = {"torch": torch, "math": math, "reduce_loss": cvloss_ref._reduction._reduce}
    for code in student.values():
        exec(code, namespace)
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = torch.tensor([[0.25, 0.25, 0.5], [0.1, 0.6, 0.3]])
    for name in student:
        args = (p,) if name == "entropy" else (p, q)
        for base in (math.e, 2.0):
            got = namespace[name](*args, reduction="none", base=base)
            torch.testing.assert_close(
                got, getattr(cvloss_ref, name)(*args, reduction="none", base=base)
            )


def test_renaming_and_comments_do_not_change_the_tokens():
    code = ERIN["entropy"]
    renamed = _renamed(code, {"positive": "ok", "logp": "lg", "h": "result"})
    assert renamed != code
    assert [t.text for t in similarity.tokens(renamed)] == [t.text for t in similarity.tokens(code)]
    texts = [t.text for t in similarity.tokens(code)]
    bare = "\n".join(line for line in code.splitlines() if '"""' not in line and "#" not in line)
    assert texts == [t.text for t in similarity.tokens(bare)]  # no docstring, no comment
    assert "where" in texts and "V" in texts  # attribute names kept, variables normalised


def test_the_released_stub_is_never_a_fingerprint():
    stub = _stubs()["entropy"]
    boilerplate = set(similarity.kgram_hashes(similarity.tokens(stub)))
    assert boilerplate
    for code in (ERIN["entropy"], FRANK["entropy"], stub):
        assert not similarity.fingerprint(code, stub).selected & boilerplate
    assert not similarity.fingerprint(stub, stub).selected


def test_a_pasted_reference_is_flagged_against_cvloss_ref(tmp_path):
    found = _found(
        tmp_path,
        {"mallory": {"entropy": _pasted_reference()}, "oscar": {"entropy": EDITED_REFERENCE_COPY}},
    )
    pasted = found["entropy", "mallory", similarity.REFERENCE]
    assert pasted.score >= 0.9, pasted
    assert pasted.detail.startswith("cvloss_ref.information.entropy + ")
    edited = found["entropy", "oscar", similarity.REFERENCE]  # helpers renamed, checks dropped
    assert edited.score >= similarity.THRESHOLD, edited
    assert ("entropy", "mallory", "oscar") in found  # and the two copies look alike


def test_a_renamed_answer_key_and_a_shared_solution_are_flagged(tmp_path):
    names = {"safe_p": "pp", "nonzero": "nz", "terms": "tt", "both_zero": "bz", "safe_q": "qq"}
    leaked = {f: _renamed(_instructor(f), names) for f in ("entropy", "cross_entropy_dist")}
    shared = _renamed(FRANK["kl_divergence"], {"keep": "mask", "ratio": "r", "per": "value"})
    found = _found(
        tmp_path,
        {
            "peggy": leaked,
            "trent": {"kl_divergence": FRANK["kl_divergence"]},
            "victor": {"kl_divergence": shared},
        },
    )
    for function in leaked:
        assert found[function, "peggy", similarity.INSTRUCTOR].score == 1.0
    pair = found["kl_divergence", "trent", "victor"]
    assert pair.score == pair.other_score == 1.0
    assert set(found) == {
        ("entropy", "peggy", similarity.INSTRUCTOR),
        ("cross_entropy_dist", "peggy", similarity.INSTRUCTOR),
        ("kl_divergence", "trent", "victor"),
    }


def test_honest_solutions_and_the_shared_stub_are_not_flagged(tmp_path):
    """Two independent correct implementations, compared with each other, the instructor's
    solution and the reference; two students who left every stub as released."""
    found = _found(tmp_path, {"erin": ERIN, "frank": FRANK, "ivan": {}, "judy": {}})
    assert found == {}


def test_the_side_by_side_page_escapes_the_code_and_marks_the_shared_part():
    evil = 'x = "<script>alert(1)</script>"\n' + FRANK["kl_divergence"]
    page = similarity.side_by_side("<b>t</b>", ("<img src=x>", evil), ("b", FRANK["kl_divergence"]))
    assert "<script>" not in page and "<img" not in page and "<b>t" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<mark>") >= 2 and "<mark>keep = p &gt; 0" in page


def test_report_prints_the_copies_writes_pages_and_changes_no_score(tmp_path, monkeypatch, capsys):
    submitted = _submit(
        tmp_path, {"erin": ERIN, "frank": FRANK, "mallory": {"entropy": _pasted_reference()}}
    )
    broken = submitted / "dave" / ASSIGNMENT
    broken.mkdir(parents=True)
    (broken / "information.ipynb").write_text("not a notebook")
    results = tmp_path / "autograded" / "mallory" / ASSIGNMENT / "results.json"
    results.parent.mkdir(parents=True)
    fields = {"student": "mallory", "assignment": ASSIGNMENT, "max_score": 16.0, "score": 4.0}
    results.write_text(json.dumps({**fields, "flags": [], "reason": ""}))
    before = results.read_bytes()
    monkeypatch.setattr(cli, "AUTOGRADED_DIR", tmp_path / "autograded")
    monkeypatch.setattr(cli, "SUBMITTED_DIR", submitted)
    monkeypatch.setattr(cli, "WORK_DIR", tmp_path)
    stale = tmp_path / "similarity" / ASSIGNMENT / "old-flag-entropy.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier report")

    assert cli.main(["report", ASSIGNMENT]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"no flagged submissions for {ASSIGNMENT}"
    assert out[1].startswith(f"{cli.COPIES_HEADING} (score >= {similarity.THRESHOLD:g}")
    (flag,) = [line for line in out if line.startswith("  entropy: mallory ~ cvloss_ref")]
    page = tmp_path / "similarity" / ASSIGNMENT / "mallory-cvloss_ref-entropy.html"
    assert out[out.index(flag) + 1] == f"    side by side: {page}"
    assert "<mark>" in page.read_text()
    assert not stale.exists()
    assert [line for line in out if "erin" in line or "frank" in line] == []
    (note,) = [line for line in out if line.startswith("  not compared: dave: ")]
    assert "not a valid notebook" in note
    assert results.read_bytes() == before  # flags never change a score
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autograded", "similarity", "submitted"]


def test_report_without_submissions_says_nothing_about_copies(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "AUTOGRADED_DIR", tmp_path / "autograded")
    monkeypatch.setattr(cli, "SUBMITTED_DIR", tmp_path / "submitted")
    monkeypatch.setattr(cli, "WORK_DIR", tmp_path)
    assert cli.main(["report", ASSIGNMENT]) == 0
    assert capsys.readouterr().out == f"no flagged submissions for {ASSIGNMENT}\n"
