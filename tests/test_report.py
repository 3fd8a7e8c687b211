"""The report: one self-contained HTML page from a real tiny run, written atomically; bad input; a real browser."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.invert.recipe import EvidenceRecipe
from harness.pipeline.plan import plan_unit
from harness.pipeline.unit import run_unit
from harness.registry import MODELS, TASKS
from harness.report import build_report
from harness.store import ResultStore
from tests.conftest import CIFAR, SST2

ATTACK = {"name": "kkt-reference", "params": {"m": 8, "restarts": 2, "iterations": 30, "lr": 1e-4, "init_scale": 0.01, "lambda_min": 0.1, "alpha": 20}}
SMALL = EvidenceRecipe(invert_top=3, invert_members=3, word_search_top=1, word_shortlist=8, word_beam=1, word_passes=2, word_relax_steps=50, dip_steps=5)


def _run(tmp: Path, card: dict, data: dict, classes, per_class: int, out: Path) -> Path:
    (tmp / "card.yaml").write_text(yaml.safe_dump(card))
    spec = {
        "model": str(tmp / "card.yaml"), "data": data, "classes": classes, "per_class": per_class, "nonmembers": 20,
        "head": {"widths": [32], "optimizer": "adam", "lr": 0.01, "max_steps": 100, "target_loss": 1e-3}, "attack": ATTACK,
    }
    (tmp / "task.yaml").write_text(yaml.safe_dump(spec))
    task = TASKS.load_file(tmp / "task.yaml")
    unit, resolved = plan_unit(task, MODELS.get(str(tmp / "card.yaml")))
    run_unit(unit, resolved, out, cache_dir=tmp / "cache", progress=False, evidence=SMALL)
    return out


@pytest.fixture(scope="module")
def text_results(tmp_path_factory, tiny_bert_dir) -> Path:
    tmp = tmp_path_factory.mktemp("text-run")
    card = {"id": str(tiny_bert_dir), "modality": "text", "pooling": "mean", "normalize": True}
    data = {"source": str(SST2), "format": "parquet", "input_column": "sentence", "label_column": "label"}
    return _run(tmp, card, data, ["negative", "positive"], 4, tmp / "out")


@pytest.fixture(scope="module")
def vision_results(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("vision-run")
    card = {"id": "identity", "modality": "image", "pooling": "flatten"}
    data = {"source": str(CIFAR), "format": "parquet", "input_column": "img", "label_column": "label"}
    return _run(tmp, card, data, ["automobile", "cat"], 3, tmp / "out")


def test_text_run_writes_selection_and_inversion_tables(text_results):
    store = ResultStore(text_results, create=False)
    scores = store.read("selection_scores").to_pylist()
    assert {(s["victim"], s["strategy"], s["k"]) for s in scores} == {
        (v, st, k) for v in ("real", "null") for st in ("cluster", "lowest-loss") for k in (10, 20, 50)
    }
    assert all(0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1 for s in scores)
    sel = store.read("selections").to_pylist()
    real = sorted((r for r in sel if r["victim"] == "real"), key=lambda r: r["rank"])
    assert real and [r["rank"] for r in real] == list(range(len(real)))
    assert sum(r["size"] for r in real) == 16  # 2 runs x 8 candidates, each in exactly one cluster
    inv = store.read("inversions").to_pylist()
    assert {r["victim"] for r in inv} == {"real"}  # the null victim is selected and scored, not inverted
    members = [r for r in inv if r["target_kind"] == "member"]
    ret = [r for r in members if r["method"] == "retrieval"]
    assert len(ret) == 3 and len([r for r in members if r["method"] == "word-search"]) == 1
    searched = json.loads(next(r for r in members if r["method"] == "word-search")["details"])
    assert searched["relax_steps"] == 50 and searched["relax_top"] == 2 and 0 < searched["relaxed_words"] <= 40
    assert -1 <= searched["relaxed_cosine"] <= 1
    # the member pool is not in the default corpus (non-members only): retrieval cannot return it
    assert not any(r["exact"] for r in ret) and all(r["text"] != r["reference_text"] for r in ret)
    assert all(-1 <= r["cosine"] <= 1 and 0 <= r["token_f1"] <= 1 and r["reference_text"] for r in inv)


def test_text_report_is_one_self_contained_page(text_results, tmp_path):
    out = build_report(text_results, tmp_path / "r.html")
    page = out.read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*tmp*"))  # written via a temp file and renamed
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count('src="data:image/png;base64,') == 4  # histogram + TPR/FPR curve, real and null
    assert page.count("<table") >= 3 and "top-20 precision" in page
    stored = ResultStore(text_results, create=False).read("inversions").to_pylist()
    import html

    assert all(html.escape(r["reference_text"]) in page for r in stored)
    assert "word-search" in page and "retrieval" in page


def test_vision_report_shows_images(vision_results, tmp_path):
    inv = ResultStore(vision_results, create=False).read("inversions").to_pylist()
    assert {r["method"] for r in inv} == {"identity"}
    members = [r for r in inv if r["target_kind"] == "member"]
    # the identity backbone is a pass-through: the true embedding gives the member back
    assert len(members) == 3 and all(r["ssim"] > 0.95 and r["cosine"] > 0.9 for r in members)
    assert all(r["image_png"].startswith(b"\x89PNG") for r in inv)
    page = build_report(vision_results, tmp_path / "v.html").read_text(encoding="utf-8")
    assert page.count('class="px"') >= 2 * 3 + 2 * sum(r["target_kind"] == "selected" for r in inv)
    # pixel victims also carry the published SSIM score, and the page says what was recovered
    victims = ResultStore(vision_results, create=False).read("victims").to_pylist()
    assert {v["victim"] for v in victims} == {"real", "null"}
    for v in victims:
        assert 0 <= v["good_ssim"] <= v["n_members"] and 0 <= v["ssim_tpr_at_fpr"] <= 1
        assert -1 <= v["mean_member_best_ssim"] <= 1 and v["ssim_threshold"] is not None
        # kkt-reference starts nowhere near the public images: every non-member is in the FPR control (with kkt's
        # public starts half of them are: test_attack_scoring.py)
        assert v["n_control"] == v["n_nonmembers"] == 20
    assert "SSIM &gt; 0.4" in page and page.count("What was recovered:") == 2
    # each member's SSIM is stored beside its cosine, and the victim's SSIM figures are those rows' aggregates
    store = ResultStore(vision_results, create=False)
    matches, cands = store.read("matches").to_pylist(), store.read("candidates").to_pylist()
    for v in victims:
        mine = [r for r in matches if r["victim"] == v["victim"] and r["kind"] == "member"]
        ssim = np.array([r["ssim"] for r in mine])
        assert len(mine) == v["n_members"] and int((ssim > 0.4).sum()) == v["good_ssim"]
        assert np.isclose(ssim.mean(), v["mean_member_best_ssim"])
        assert np.isclose(np.mean([r["ssim_passed"] for r in mine]), v["ssim_tpr_at_fpr"])
        n_cand = sum(c["victim"] == v["victim"] for c in cands)
        assert all(0 <= r["ssim_candidate"] < n_cand for r in mine)
        others = [r for r in matches if r["victim"] == v["victim"] and r["kind"] == "nonmember"]
        assert all(r["ssim"] is not None and r["ssim_candidate"] is None for r in others)
    assert page.count('alt="SSIM histogram"') == 2 == page.count('alt="similarity histogram"')  # one per victim
    # 20 non-members cannot resolve 1%: the page says so beside the threshold
    assert page.count("20 non-members resolve no false-positive rate below 5%, not 1%") == 2
    from harness.scoring.embedding import control_note

    assert control_note(0.01, 100) is None and control_note(0.05, 20) is None and control_note(0.01, None) is None
    assert "at least 100 non-members" in control_note(0.01, 99)
    assert "below 2.5%, not 1%" in control_note(0.01, 40) and "below 3.33%" in control_note(0.01, 30)  # not rounded down
    assert "below 0.2%, not 0.1%" in control_note(0.001, 500)  # fpr 0.001 read '0%' where a whole percent was shown


def test_text_victims_have_no_ssim_and_a_verdict(text_results, tmp_path):
    victims = ResultStore(text_results, create=False).read("victims").to_pylist()
    assert all(v["good_ssim"] is None and v["ssim_threshold"] is None for v in victims)
    matches = ResultStore(text_results, create=False).read("matches").to_pylist()
    assert matches and all(r["ssim"] is None and r["ssim_passed"] is None for r in matches)
    page = build_report(text_results, tmp_path / "t.html").read_text(encoding="utf-8")
    assert page.count("What was recovered:") == 2 and "SSIM &gt; 0.4 (good" not in page
    assert 'alt="SSIM histogram"' not in page and page.count('alt="similarity histogram"') == 2
    # the null victim's diagnostics describe the rows it trained on (a disjoint draw), and say so
    assert page.count("members the weights carry") == 1 and page.count("its own training rows (not the members) the weights carry") == 1
    # trained without weight decay: no bound on the oracle residual from the gradient (tests/test_victims.py has the bound)
    assert all(v["stationarity_bound"] is None for v in victims) and "distance from stationarity" not in page
    # two runs each: what the first run alone found, beside both (a count of members, never above the whole search's)
    assert all(0 <= v["good_at_0_8_first_half"] <= v["good_at_0_8"] for v in victims)
    assert page.count("at cosine > 0.8 from the first half of the attack") == 2


def test_verdict_tells_reconstruction_from_membership_signal():
    from harness.report.glance import verdict_html as _verdict

    row = {"n_members": 20, "members_passed": 18, "fpr": 0.01, "good_at_0_8": 0, "good_ssim": None}
    assert "membership signal, not a reconstruction" in _verdict(row) and "18 of 20" in _verdict(row)
    assert "3 of 20 members have a candidate close to them (cosine &gt; 0.8)" in _verdict({**row, "good_at_0_8": 3})
    # pixels: the SSIM rule decides, not the cosine
    assert "(SSIM &gt; 0.4): reconstructions" in _verdict({**row, "good_at_0_8": 0, "good_ssim": 5})
    assert "membership signal" in _verdict({**row, "good_at_0_8": 9, "good_ssim": 0})
    assert "nothing recovered" in _verdict({**row, "members_passed": 0})
    # no finite candidate (every run diverged): no threshold, so nothing was measured, which is not 'nothing recovered'
    unmeasured = _verdict({**row, "members_passed": 0, "threshold": None})
    assert "nothing was measured, which is not the same as nothing recovered" in unmeasured
    assert "No member passes" not in unmeasured


def test_verdict_does_not_call_chance_a_signal_and_reads_pixels_by_ssim_too():
    """1 of 8 members above a threshold of 20 non-members (a 5% resolution) is what chance gives a third of the time:
    it was called a membership signal; a pixel victim whose members pass by SSIM was said to give up nothing."""
    from harness.report.glance import verdict_html as _verdict
    from harness.scoring.verdict import chance_p

    assert abs(chance_p(8, 1, 0.05) - (1 - 0.95**8)) < 1e-12 and chance_p(20, 20, 0.01) < 1e-30
    row = {"n_members": 8, "members_passed": 1, "fpr": 0.01, "good_at_0_8": 0, "good_ssim": 0, "n_control": 20}
    line = _verdict(row)
    assert "the highest of 20 non-members: it resolves 5% FPR, not 1%" in line and "no membership signal" in line
    assert "p = 0.34 at 5% FPR" in line
    by_ssim = _verdict({**row, "ssim_tpr_at_fpr": 0.75})
    assert "6 of 8 members pass" in by_ssim and "by SSIM" in by_ssim and "a membership signal, not a reconstruction" in by_ssim
    assert "the 1%-FPR threshold" in _verdict({**row, "n_control": 200, "members_passed": 5})


def test_report_opens_with_each_unit_beside_its_null_and_tells_sections_apart(text_results, tmp_path):
    page = build_report(text_results, tmp_path / "g.html").read_text(encoding="utf-8")
    glance = page.index("<h2>At a glance</h2>")
    first = page.index('<h2 id="')
    assert glance < first and "null: TPR" in page[glance:first] and page.count('<a href="#') >= 1
    section = page[first:]
    # the verdict first, then the measures; the heading names the recipe and seed
    assert section.index("What was recovered:") < section.index("<th>measure</th>")
    assert ", seed 0: real victim</h2>" in section and "How to read this page" in page
    assert 'class="hit">hit<' not in page  # a threshold pass is 'passes', a reconstruction 'good'


def test_a_victim_whose_attack_diverged_is_reported_unmeasured(tmp_path):
    """Every run diverged: the row's TPR is null (not 0), the run still writes its report and exits 0."""
    import numpy as np
    import torch

    from harness.attacks.base import AttackResult
    from harness.pipeline.stages import Embedded, score_stage

    emb = Embedded(members=torch.randn(4, 6), nonmembers=torch.randn(10, 6), mean=torch.zeros(6), normalized=False,
                   cache_hit=False, wall_s=0.0)
    result = AttackResult(candidates=torch.full((3, 6), float("nan")), lambdas=torch.zeros(3), labels=torch.zeros(3),
                          run_ids=torch.zeros(3), runs=[], params={})
    scores = score_stage(result, emb, 0.01)
    assert np.isnan(scores.tpr) and np.isnan(scores.threshold) and not scores.passed().any()


def test_pixel_score_stage_counts_planted_copies_and_skips_diverged_runs():
    import torch

    from harness.attacks.base import AttackResult
    from harness.pipeline.stages import Embedded, pixel_score_stage

    g = torch.Generator().manual_seed(0)
    members, nonmembers = torch.rand(6, 3 * 8 * 8, generator=g) * 2 - 1, torch.rand(30, 3 * 8 * 8, generator=g) * 2 - 1
    mean = members.mean(0)
    emb = Embedded(members - mean, nonmembers - mean, mean, False, False, 0.0)
    cands = torch.cat([members[:4] - mean + 0.01 * torch.randn(4, 192, generator=g), torch.full((2, 192), float("nan"))])
    res = AttackResult(cands, torch.zeros(6, dtype=torch.long), torch.ones(6), torch.zeros(6, dtype=torch.long), [], {})
    s = pixel_score_stage(res, emb, 0.01, (3, 8, 8))
    assert s.good == 4 and s.member_best[:4].min() > 0.9 and s.member_best[4:].max() < 0.4
    res.candidates = torch.full((2, 192), float("nan"))
    assert pixel_score_stage(res, emb, 0.01, (3, 8, 8)) is None


def test_report_cli_and_bad_input(text_results, tmp_path, capsys):
    assert main(["report", str(text_results), "--out", str(tmp_path / "x.html")]) == 0
    assert "report:" in capsys.readouterr().out and (tmp_path / "x.html").stat().st_size > 10_000
    empty = tmp_path / "empty"
    ResultStore(empty)  # a results directory with nothing in it
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no victims to report on" in err[0] and not (empty / "report.html").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@functools.cache
def _chromium() -> str | None:
    """A browser that runs: a `chromium` on PATH can be a stub (Ubuntu's snap wrapper) that prints how to install
    the real one and fails, which says nothing about the report."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is None:
            continue
        try:
            r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if r.returncode == 0 and "chrom" in r.stdout.lower():
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="no working chromium (CI installs it: apt-get install chromium)")
def test_report_renders_in_a_real_browser(vision_results, text_results, tmp_path):
    for name, results in (("vision", vision_results), ("text", text_results)):
        page = build_report(results, tmp_path / f"{name}.html")
        base = [_chromium(), *CHROMIUM_FLAGS]
        dom = subprocess.run(
            [*base, f"--user-data-dir={tmp_path / (name + '-profile-dom')}", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        ).stdout
        assert "<table" in dom and "Reconstruction report" in dom
        assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom)) >= 4
        shot = tmp_path / f"{name}.png"
        subprocess.run(
            [*base, f"--user-data-dir={tmp_path / (name + '-profile-shot')}", f"--screenshot={shot}",
             "--window-size=1200,2000", page.as_uri()], capture_output=True, timeout=120,
        )
        from PIL import Image
        import numpy as np

        px = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
        assert px.shape[0] >= 1000 and px.std() > 10  # something was drawn, not a blank page


def test_the_image_grid_shows_each_members_best_selection_not_its_highest_ranked():
    from harness.report.evidence import image_grid as _image_grid

    def row(kind, rank, target, ssim, cos):
        return {"target_kind": kind, "rank": rank, "target": target, "matched_member": 0, "ssim": ssim, "psnr": 10.0,
                "target_member_cosine": cos, "cosine": cos, "image_png": b"", "reference_png": b""}

    inv = [row("member", None, 0, 0.9, 0.99), row("selected", 3, 3, 0.64, 0.62), row("selected", 7, 7, 0.82, 0.96)]
    grid = _image_grid(inv, {3: {"hit": True}, 7: {"hit": True}})
    assert "rank 7, cos 0.960, SSIM 0.82" in grid and "rank 3, cos" not in grid


def test_a_very_long_sentence_is_cut_on_the_page_and_wraps():
    """A 20,000-character member ran over the inversion's column: the page shows its start and its length, and
    both sentence cells wrap."""
    from harness.report.evidence import text_pairs

    long = "x" * 20000
    row = {"target_kind": "member", "rank": None, "target": 0, "matched_member": 0, "target_member_cosine": 1.0,
           "method": "retrieval", "reference_text": long, "text": "short <b>", "cosine": 0.5, "token_f1": 0.1,
           "content_f1": 0.1, "bleu": 1.0, "exact": False}
    page = text_pairs([row], {})
    assert long not in page and "x" * 600 + "… (20,000 characters)" in page and "short &lt;b&gt;" in page
    assert page.count("<div class=s>") == 2


def test_glance_scores_images_by_ssim_and_keeps_its_columns_without_a_control():
    from harness.report.glance import glance

    base = {"task": "t", "model": "identity", "recipe": "none+paper", "seed": 0, "n_members": 8, "fpr": 0.01, "n_control": 200,
            "threshold": 0.5, "head_dims": [3072, 32, 1]}
    px = {**base, "unit_id": "u1", "victim": "real", "tpr_at_fpr": 0.0, "members_passed": 0, "good_at_0_8": 0,
          "good_ssim": 2, "ssim_tpr_at_fpr": 0.75}
    text = {**base, "unit_id": "u2", "model": "minilm", "victim": "real", "tpr_at_fpr": 0.5, "members_passed": 4,
            "good_at_0_8": 1, "good_ssim": None, "ssim_tpr_at_fpr": None}
    page = glance([px, text])  # neither has a null control beside it
    rows = [r for r in page.split("<tr>")[2:]]
    assert all(r.count("<td>") == 8 for r in rows), rows  # unit, 3 real, 3 null, verdict
    assert "<td>0.75</td><td>6/8</td><td>2/8</td>" in rows[0] and "(SSIM &gt; 0.4): reconstructions" in rows[0]
    assert "<td>0.50</td><td>4/8</td><td>1/8</td>" in rows[1]


def test_units_of_the_same_task_model_recipe_and_seed_are_told_apart_by_what_differs():
    """A grid over head.lr (or two attack seeds) gave sections with identical headings."""
    from harness.report.glance import unit_labels

    def victim(uid, lr, attack_seed=None):
        task = {"name": "t", "seed": 0, "head": {"lr": lr}, "attack": {"params": {"seed": attack_seed}}, "description": uid}
        return {"unit_id": uid, "task": "t", "model": "m", "recipe": "standardize+paper", "seed": 0,
                "settings": json.dumps({"task": task})}

    labels = unit_labels([victim("a", 0.1), victim("b", 0.01), victim("c", 0.1, 5), victim("d", 0.1, 5), victim("e", 1.0)])
    assert labels["a"] == "t × m, standardize+paper, seed 0, attack.params.seed=null, head.lr=0.1"
    assert labels["b"].endswith("attack.params.seed=null, head.lr=0.01") and "attack.params.seed=5" in labels["c"]
    assert labels["c"].endswith("(unit c)") and labels["d"].endswith("(unit d)")  # the same settings: the unit's id
    assert len(set(labels.values())) == 5
