"""bench/scale.py and bench/gpu.sh on the CPU at tiny sizes: every entry the GPU script calls runs here."""

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import recipes  # noqa: E402
import scale  # noqa: E402

from harness.specs.task import HeadRecipe  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pixel_data(n_per_class: int, seed: int = 0) -> dict:
    """CIFAR-shaped rows in [-1, 1] (3 x 32 x 32), two classes, in bench/attack_data's layout."""
    g = torch.Generator().manual_seed(seed)
    rows = lambda k: torch.rand(k, 3072, generator=g) * 2 - 1  # noqa: E731
    lab = lambda k: torch.arange(k) % 2  # noqa: E731
    n = 2 * n_per_class
    return {"members": rows(n), "labels": lab(n), "public": rows(40), "public_labels": lab(40), "null": rows(n),
            "null_labels": lab(n), "texts": None, "l2": False}


def test_scale_table_row_and_print_on_tiny_pixels(monkeypatch, capsys):
    monkeypatch.setattr(recipes, "load", lambda name, n, seed: pixel_data(n, seed))
    head = HeadRecipe(widths=[32], init_scale=1e-3, optimizer="gd", lr=0.5, weight_decay=1e-3, max_steps=200, grad_tol=1e-6)
    r = scale.row("pixels", 4, 0, spm=0.25, null_share=0.5, pixel_head=head)
    assert r["real"]["m"] == 40 and r["real"]["budget_s"] == pytest.approx(1.0) and r["null"]["budget_s"] == pytest.approx(0.5)
    assert r["real"]["device"] == "cpu" and r["real"]["work"] > 0 and r["real"]["peak_mib"] > 0
    assert 0 <= r["real"]["good"] <= 4 and 0 <= r["null"]["good"] <= 4
    scale.table([r], 0.25, 0.5)
    out = capsys.readouterr().out
    assert "budget 0.25 s per member" in out and "   4 pixels     40" in out
    assert re.search(r"pixels n=4 real: trained .*row space, \d with an activation pattern of their own; attacking", out)
    no_null = scale.row("pixels", 4, 0, spm=0.25, null_share=0, pixel_head=head)
    assert "null" not in no_null
    scale.table([no_null], 0.25, 0)
    assert "not run" in capsys.readouterr().out
    over = scale.row("pixels", 4, 0, spm=0.25, null_share=0, pixel_head=head, attack={"recombine": 0.25, "restarts": 4})
    p = over["real"]["params"]
    assert (p["recombine"], p["restarts"], p["time_budget_s"]) == (0.25, 4, pytest.approx(1.0))  # budget stays per member
    out = capsys.readouterr().out
    assert "attack {'recombine': 0.25, 'restarts': 4}" in out and "(eager pass, recombine 0.25, init mixed)" in out
    planted = scale.row("pixels", 4, 0, spm=0.25, null_share=0, pixel_head=head, attack={"restarts": 4}, planted=True)
    assert re.fullmatch(r"[0-4]/4 x\d+\.\d", planted["real"]["planted"]), planted["real"]["planted"]
    out = capsys.readouterr().out
    assert "pixels n=4 planted (" in out and f"{planted['real']['planted_its']} iterations ({recipes.PLANTED_RUN}): " in out
    with pytest.raises(SystemExit) as e:
        scale.main(["--part", "table", "--attack", '{"time_budget_s": 3}'])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        scale.main(["--part", "table", "--pixel-optimizer", "lbfgs", "--pixel-schedule", "cosine"])
    assert e.value.code == 2
    assert scale.pixel_head("gd", 10, "cosine").lr_schedule == "cosine" and scale.pixel_head("lbfgs").lr_schedule == "constant"


def test_the_planted_check_runs_as_long_as_the_searchs_deepest_lineage_a_decade_below_its_steps(monkeypatch):
    """Recombined brackets continue earlier candidates: their iterations add up (the most any restart of each bracket
    ran); without recombination a lineage is one bracket long. The planted run gets that many (capped), at steps a
    decade below the search's smallest."""
    from harness.attacks import make_attack
    from harness.attacks.priors import domain_prior
    from harness.diagnostics.identifiability import check

    d = pixel_data(2)
    head = HeadRecipe(widths=[16], init_scale=1e-3, optimizer="gd", lr=0.5, weight_decay=1e-3, max_steps=100)
    v, head, _ = recipes.victim(d, recipes.RECIPES["none+paper"], True, 0, "real", head)
    view = recipes.attack_view(v, head, 2, domain_prior(True), 1.0)
    base = {"m": 8, "restarts": 4, "iterations": 12, "rungs": 1, "brackets": 3, "subspace": "off", "init": "rows"}
    res = make_attack("kkt", {**base, "recombine": 0.5}).reconstruct(view, progress=False)
    assert any(r.status == "pruned" and r.iterations < 12 for r in res.runs)  # a pruned restart does not set the length
    assert recipes.lineage_iterations(res) == 36
    assert recipes.lineage_iterations(make_attack("kkt", {**base, "recombine": 0}).reconstruct(view, progress=False)) == 12
    monkeypatch.setattr(recipes, "PLANTED_MAX_ITERATIONS", 30)
    assert recipes.planted_iterations(res) == 30
    seen = []
    monkeypatch.setattr(recipes, "planted_check", lambda *a, **k: seen.append(a[3]) or check(*a, **k))
    _, pc, _ = recipes.planted(v, head, d, True, {**base, "seed": 0, "lr_range": (0.01, 0.05)}, 0, 1.0, 36)
    assert pc.planted_loss <= pc.kept_loss
    assert (seen[0]["iterations"], seen[0]["restarts"], seen[0]["lr_range"]) == (36, 4, pytest.approx((0.001, 0.01)))


def test_scale_text_data_reaches_the_loader_and_bad_names_stop_early(monkeypatch, capsys):
    """--text-data picks the text case's data (the pixel case keeps its classes); a name that is neither
    sst2, fortunes:A,B nor debian:A,B stops with one line and exit 2 before any work."""
    asked = []
    monkeypatch.setattr(recipes, "load", lambda name, n, seed: asked.append(name))
    assert scale.row("text", 4, 0, spm=0.25, null_share=0, text_data="fortunes:science,politics") is None
    assert scale.row("pixels", 4, 0, spm=0.25, null_share=0, text_data="fortunes:science,politics") is None
    assert scale.row("text", 4, 0, spm=0.25, null_share=0, text_data="debian:games,science") is None
    assert asked == ["fortunes:science,politics", "cifar:1,3", "debian:games,science"]
    for bad in ("imdb", "fortunes:science", "debian:games", "cifar:0,7"):  # the text case takes text data only
        with pytest.raises(SystemExit) as e:
            scale.main(["--part", "table", "--cases", "text", "--text-data", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"--text-data {bad!r}" in err and "fortunes:CAT_A,CAT_B" in err and "debian:SECTION_A,SECTION_B" in err
    assert asked == ["fortunes:science,politics", "cifar:1,3", "debian:games,science"]  # nothing loaded for the bad names
    for bad, said in (('{"max_stepz": 3}', "--text-head.max_stepz = 3: unknown parameter (did you mean 'max_steps'?)"),
                      ('{"lr": -1}', "--text-head.lr = -1: Input should be greater than 0")):  # the text victims' head
        with pytest.raises(SystemExit) as e:
            scale.main(["--part", "table", "--cases", "text", "--text-head", bad])
        assert e.value.code == 2 and said in capsys.readouterr().err
    assert asked == ["fortunes:science,politics", "cifar:1,3", "debian:games,science"]
    with pytest.raises(SystemExit) as e:  # the recipes bench checks its --data names the same way
        recipes.main(["--data", "sst2,imdb"])
    assert e.value.code == 2 and "--data 'imdb'" in capsys.readouterr().err
    assert asked == ["fortunes:science,politics", "cifar:1,3", "debian:games,science"]
    assert [recipes.name_error(x) for x in ("sst2", "cifar", "cifar:0,7", "fortunes:a,b")] == [None] * 4
    assert all(recipes.name_error(x) for x in ("cifar:0,12", "cifar:0", "fortunes:", "sst-2"))


def test_a_fortunes_class_too_small_for_the_draw_is_a_line_not_a_smaller_draw(tmp_path, monkeypatch, capsys):
    """A category with fewer quotes than members + null + non-members is named with its count and what the draw
    needs, and the benches skip it; before, the null and the non-members silently came out smaller."""
    import attack_data

    quote = "a quote that is long enough to be kept number {}"
    for cat, k in (("big", 400), ("small", 230)):
        (tmp_path / cat).write_text("\n%\n".join(quote.format(i) for i in range(k)) + "\n")
    monkeypatch.setattr(attack_data, "FORTUNES", tmp_path)
    monkeypatch.setattr(attack_data, "_embed_cached", lambda texts, key, encoder=None: pytest.fail("embedded"))
    with pytest.raises(attack_data.ShortClass, match=r"fortunes category 'small' holds 230 usable texts; a draw of 20 per class "
                                         r"needs 240 \(20 members, 20 for the disjoint null, 200 non-members\)"):
        attack_data.text_set("fortunes:big,small", 20, 400)
    assert recipes.main(["--data", "fortunes:big,small", "--n", "20", "--recipes", "none+paper"]) == 0
    out = capsys.readouterr().out
    assert "fortunes:big,small: fortunes category 'small' holds 230 usable texts" in out and "; skipped" in out
    assert scale.row("text", 40, 0, spm=0.25, null_share=0, text_data="fortunes:big,small") is None
    assert "text n=40: fortunes category 'small'" in capsys.readouterr().out


def test_debian_descriptions_are_read_by_section_once_each_and_an_empty_section_is_a_line(tmp_path, monkeypatch, capsys):
    """debian:A,B reads the one-line descriptions of apt's package lists (`apt-cache dumpavail`) by archive section:
    a description shared by two packages counts once, in the first section named; a section with none is named
    with its count, and the bench skips it."""
    import attack_data

    records = [f"Package: p{i}\nSection: {sec}\nDescription: {desc}\nDescription-md5: 0\n"
               for i, (sec, desc) in enumerate([("games", "a puzzle game with falling blocks"),
                                                ("science", "a puzzle game with falling blocks"),  # counted once
                                                ("contrib/science", "solver for ordinary differential equations"),
                                                ("games", "short"),  # under 20 characters: left out
                                                ("libs", "a library that no section named here holds"),
                                                ("games", "a card game for two players"),
                                                ("games", "a dungeon crawler in the terminal")])]
    (tmp_path / "dump").write_text("\n".join(records))
    (tmp_path / "apt-cache").write_text(f"#!/bin/sh\ncat {tmp_path / 'dump'}\n")
    (tmp_path / "apt-cache").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    texts, labels = attack_data.debian_texts(("games", "science"))
    assert texts == ["a puzzle game with falling blocks", "a card game for two players",
                     "a dungeon crawler in the terminal", "solver for ordinary differential equations"]
    assert labels.tolist() == [0, 0, 0, 1]
    monkeypatch.setattr(attack_data, "_embed_cached", lambda texts, key, encoder=None: pytest.fail("embedded"))
    with pytest.raises(attack_data.ShortClass, match=r"Debian section 'sound' holds 0 usable texts"):
        attack_data.text_set("debian:games,sound", 1, 2)
    assert recipes.name_error("debian:games,science") is None and recipes.name_error("debian:games")
    assert recipes.main(["--data", "debian:games,sound", "--n", "1", "--recipes", "none+paper"]) == 0
    out = capsys.readouterr().out
    assert "debian:games,sound: Debian section 'games' holds 3 usable texts" in out and "; skipped" in out


def test_a_cifar_class_too_small_for_the_draw_is_a_line_not_a_short_null(tmp_path, monkeypatch, capsys):
    """A CIFAR-10 draw whose class holds fewer images than members + null + non-members: named, and the benches skip
    it (the null's rows came out fewer than its labels)."""
    import attack_data

    rng = np.random.default_rng(0)
    np.savez_compressed(tmp_path / "cifar10_test.npz", imgs=rng.integers(0, 255, (90, 32, 32, 3), dtype=np.uint8),
                        labels=np.repeat([0, 1, 2], 30))
    monkeypatch.setattr(attack_data, "CACHE", tmp_path)
    monkeypatch.setattr(attack_data, "shared_data", lambda: tmp_path)
    x, y, non, z, zy = attack_data.cifar_pixels([0, 1], 10, 20, disjoint=True)  # 10 + 10 + 10 of 30: fits
    assert x.shape == z.shape == (20, 3072) and non.shape == (20, 3072) and len(y) == len(zy) == 20
    with pytest.raises(attack_data.ShortClass, match=r"CIFAR-10 class 0 holds 30 test images; a draw of 12 per class needs 34 "
                                         r"\(12 members, 12 for the disjoint null, 10 non-members\)"):
        attack_data.cifar_pixels([0, 1], 12, 20, disjoint=True)
    assert recipes.main(["--data", "cifar:0,1", "--n", "12", "--recipes", "", "--pixel-recipes", "none+paper"]) == 0
    assert "cifar:0,1: CIFAR-10 class 0 holds 30 test images" in capsys.readouterr().out


def test_sst2_draws_of_more_than_sixty_per_class_are_drawn_not_an_index_error(tmp_path, monkeypatch):
    """bench/attack.py's SST-2 draws share one pool of 60 per class (so n <= 60 reuse embeddings); n above it
    (--trend-ns 100) indexed past the pool. Now the pool grows to n, and draws of n <= 60 are the same rows as before."""
    import attack_data
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "sst2").mkdir()
    sentences = [f"sentence number {i}" for i in range(1200)]
    pq.write_table(pa.table({"sentence": sentences, "label": [i % 2 for i in range(1200)]}),
                   tmp_path / "sst2" / "train-00000-of-00001.parquet")
    monkeypatch.setenv("RECON_SHARED_DATA", str(tmp_path))
    monkeypatch.setattr(attack_data, "_embed_cached", lambda texts, key, encoder=None: torch.tensor(
        [[float(t.split()[-1])] for t in texts]))  # an embedding that names its sentence
    x10 = attack_data.sst2_embeddings(10, 50, disjoint=True)[0]
    x60 = attack_data.sst2_embeddings(60, 50, disjoint=True)[0]
    x70, y70, non70, z70, zy70 = attack_data.sst2_embeddings(70, 50, disjoint=True)
    assert x10.shape == (20, 1) and x70.shape == z70.shape == (140, 1) and non70.shape == (50, 1)
    assert y70.tolist() == zy70.tolist() == [0] * 70 + [1] * 70
    assert torch.equal(x10, torch.cat([x60[:10], x60[60:70]]))  # n <= 60: the same members as ever
    rows = lambda t: set(t.flatten().tolist())  # noqa: E731
    assert not (rows(x70) & rows(z70)) and not (rows(x70) & rows(non70)) and not (rows(z70) & rows(non70))


def test_scale_cost_part_runs_each_point_in_its_own_process(capsys):
    assert scale.main(["--part", "cost", "--cost-ms", "4,8", "--cost-seconds", "0.1", "--devices", "cpu",
                       "--cost-products", "reduced", "--cost-restarts", "1,3"]) == 0  # full products: the GPU script's test
    out = capsys.readouterr().out
    for batch, m in itertools.product((1, 3), (4, 8)):
        assert re.search(rf"\n  cpu +reduced +eager +{batch} +{m} +\d+ ", out), out  # auto: short runs stay eager
    assert "cpu (reduced products, compile auto, 3 restarts): time per iteration grows as m^" in out and "failed" not in out


def test_scale_cost_products_and_restarts_must_be_known(capsys):
    with pytest.raises(SystemExit) as e:
        scale.main(["--part", "cost", "--cost-products", "full,half"])
    assert e.value.code == 2 and "--cost-products 'full,half': unknown ['half']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        scale.main(["--part", "cost", "--cost-restarts", "16,0"])
    assert e.value.code == 2 and "--cost-restarts '16,0': give a comma list of positive whole numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        scale.main(["--part", "cost", "--cost-compile", "auto,yes"])
    assert e.value.code == 2 and "--cost-compile 'auto,yes': unknown ['yes']" in capsys.readouterr().err


@pytest.mark.slow
def test_gpu_script_parses_and_runs_its_entries_at_tiny_sizes(tmp_path):
    """bench/gpu.sh with its CPU/tiny switch: the same commands the GPU run makes, on the shared CIFAR-10 split."""
    from attack_data import shared_data

    if shared_data() is None:
        pytest.skip("../shared/data (or $RECON_SHARED_DATA) is absent")
    script = ROOT / "bench" / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "GPU_TINY": "1", "GPU_OUT": str(tmp_path), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHON": sys.executable}
    got = subprocess.run(["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    log = (tmp_path / "gpu.log").read_text(encoding="utf-8")
    assert "== cost" in log and "== scale table" in log and "members at SSIM > 0.4" in log
    assert re.search(r"\n  cpu +reduced +compiled +2 +8 +\d+ ", log), log  # the compiled point (compile: on)
    assert "== 1. kkt at m = 8 (GPU_TINY" in log and "== 2. n = 4 (GPU_TINY" in log  # the sizes it ran, not the device's
    before = (tmp_path / "gpu.log").stat().st_mtime_ns
    usage = subprocess.run(["bash", str(script), "--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert usage.returncode == 0 and "--prepare" in usage.stdout  # its use, not a run (it started the GPU run)
    assert (tmp_path / "gpu.log").stat().st_mtime_ns == before


def test_data_names_classes_and_pixel_victim_recipes(monkeypatch):
    assert recipes.split_names("sst2,fortunes:a,b,cifar:0,2,cifar") == ["sst2", "fortunes:a,b", "cifar:0,2", "cifar"]
    assert recipes.split_names("fortunes:a,b,c@mpnet,cifar:0,2,9,sst2@mpnet") == [  # more than two classes
        "fortunes:a,b,c@mpnet", "cifar:0,2,9", "sst2@mpnet"]
    assert recipes.name_error("fortunes:a,b,c") is None and recipes.name_error("cifar:0,2,9") is None
    assert "two or more" in recipes.name_error("cifar:0,0")
    binary, four = recipes.multiclass(recipes.TEXT_HEAD, 2), recipes.multiclass(recipes.TEXT_HEAD, 4)
    assert (binary.loss, four.loss, four.widths) == ("logistic", "ce", recipes.TEXT_HEAD.widths)
    seen = []
    monkeypatch.setattr(recipes, "pixel_set", lambda classes, n, non, seed: seen.append(classes) or {})
    recipes.load("cifar:0,2", 5, 0)
    recipes.load("cifar", 5, 0)
    assert seen == [[0, 2], [1, 3]]
    lb, gd = scale.pixel_head("lbfgs"), scale.pixel_head("gd", 123)
    assert (lb.optimizer, lb.lr, lb.max_steps) == ("lbfgs", 1.0, scale.LBFGS_STEPS)
    assert (gd.optimizer, gd.lr, gd.max_steps) == ("gd", scale.PIXEL_HEAD.lr, 123)
    assert lb.weight_decay == gd.weight_decay == scale.PIXEL_HEAD.weight_decay  # the same stationary point


def test_a_bench_victim_that_diverges_is_trained_again_at_half_the_step(capsys):
    """The builder refuses a diverged head (a one-line fix: a smaller step); the benches take that fix themselves, at
    the same gradient-flow time, and say so, rather than stopping a table or attacking the diverged head."""
    steep = HeadRecipe(widths=[32], init_scale=1e-3, optimizer="gd", lr=40.0, weight_decay=1e-3, max_steps=50, grad_tol=1e-6)
    v, head, _ = recipes.victim(pixel_data(4), recipes.RECIPES["none+paper"], True, 0, "null", steep)
    said = capsys.readouterr().out
    assert said.count("the null victim's training diverged") == 2 and "at lr 40; trained again at half the step" in said, said
    assert head.lr < steep.lr and head.max_steps * head.lr == steep.max_steps * steep.lr
    assert v.report.stopped_by != "diverged" and v.head.is_finite()
