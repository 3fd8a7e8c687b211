"""Data for bench/attack.py: SST-2 MiniLM embeddings (cached) and CIFAR-10 pixels, from ../shared/data."""

from __future__ import annotations

import functools
import io
import os
import re
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench"


def shared_data() -> Path | None:
    p = Path(os.environ.get("RECON_SHARED_DATA", REPO.parent / "shared" / "data"))
    return p if p.is_dir() else None


def sst2_embeddings(n_per_class: int, n_nonmembers: int, seed: int = 0, disjoint: bool = False) -> tuple:
    """Members (n_per_class per label) and non-members from SST-2 train, as unit MiniLM embeddings.
    With `disjoint`, also a third draw of the members' size and classes (the null victim's training set)."""
    import pyarrow.parquet as pq

    root = shared_data()
    table = pq.read_table(root / "sst2" / "train-00000-of-00001.parquet").to_pandas()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(table))
    pool = max(60, n_per_class)  # members for every n <= 60 come from the same pool, so embeddings are reused
    member_idx = np.concatenate([order[table.label.values[order] == c][:pool] for c in (0, 1)])
    rest = np.setdiff1d(order, member_idx, assume_unique=True)
    rest = rest[rng.permutation(len(rest))]
    n_non = max(n_nonmembers, 500)
    non_idx, after = rest[:n_non], rest[n_non:]
    null_idx = np.concatenate([after[table.label.values[after] == c][:pool] for c in (0, 1)])
    idx = np.concatenate([member_idx, non_idx, null_idx])
    emb = _embed_cached([table.sentence.values[i] for i in idx], f"sst2_seed{seed}_{len(idx)}")
    m_emb, n_emb, z_emb = emb[: 2 * pool], emb[2 * pool : 2 * pool + n_non], emb[2 * pool + n_non :]
    keep = np.concatenate([np.arange(n_per_class), pool + np.arange(n_per_class)])
    labels = torch.tensor(table.label.values[member_idx][keep], dtype=torch.long)
    out = (m_emb[keep], labels, n_emb[:n_nonmembers])
    if disjoint:
        out += (z_emb[keep], torch.tensor(table.label.values[null_idx][keep], dtype=torch.long))
    return out


def _embed_cached(sentences: list[str], key: str, encoder: str | None = None) -> torch.Tensor:
    """MiniLM's unit-norm embeddings of `sentences` (or `encoder`'s, bench/encoders.py), cached under `key`."""
    import encoders

    path = CACHE / f"{key}.pt"
    if path.exists():
        blob = torch.load(path, weights_only=True)
        if blob["sentences"] == sentences:
            return blob["emb"]
    emb = encoders.embed(encoder or encoders.DEFAULT, sentences)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save({"sentences": sentences, "emb": emb}, path)
    return emb


class ShortClass(ValueError):
    """A class too small for the draw asked of it (the benches skip that data set with this line)."""


def short_class(what: str, holds: str, n_per_class: int, per_non: int, null: bool, other_fix: str = "") -> ShortClass:
    """The one line for a class too small for a draw of n_per_class members (and as many for the null) + per_non."""
    need = n_per_class * (1 + null) + per_non
    parts = f"{n_per_class} members" + (f", {n_per_class} for the disjoint null" if null else "") + f", {per_non} non-members"
    return ShortClass(f"{what} holds {holds}; a draw of {n_per_class} per class needs {need} ({parts}): lower the members "
                      f"per class{other_fix}")


def cifar_pixels(classes: list[int], n_per_class: int, n_nonmembers: int, seed: int = 0, disjoint: bool = False) -> tuple:
    """Members and non-members from the given CIFAR-10 classes as flattened [-1, 1] pixels (N, 3072).
    With `disjoint`, also a third draw of the members' size and classes (the null victim's training set)."""
    import pyarrow.parquet as pq
    from PIL import Image

    path = CACHE / "cifar10_test.npz"
    if path.exists():
        z = np.load(path)
        imgs, labels = z["imgs"], z["labels"]
    else:
        t = pq.read_table(shared_data() / "cifar10" / "test-00000-of-00001.parquet").to_pandas()
        imgs = np.stack([np.asarray(Image.open(io.BytesIO(r["bytes"])).convert("RGB")) for r in t.img.values])
        labels = t.label.values.astype(np.int64)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, imgs=imgs, labels=labels)
    rng = np.random.default_rng(seed)
    mem, lab, non, dis = [], [], [], []
    per_non = int(np.ceil(n_nonmembers / len(classes)))
    for k, c in enumerate(classes):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        if len(idx) < n_per_class * (1 + disjoint) + per_non:  # else a draw comes out short of its labels
            raise short_class(f"CIFAR-10 class {c}", f"{len(idx)} test images", n_per_class, per_non, disjoint)
        mem.append(idx[:n_per_class])
        lab += [k] * n_per_class
        non.append(idx[n_per_class : n_per_class + per_non])
        dis.append(idx[n_per_class + per_non : 2 * n_per_class + per_non])
    to_x = lambda ii: torch.tensor(imgs[ii], dtype=torch.float32).permute(0, 3, 1, 2).reshape(len(ii), -1) / 127.5 - 1  # noqa
    out = (to_x(np.concatenate(mem)), torch.tensor(lab), to_x(np.concatenate(non))[:n_nonmembers])
    if disjoint:
        out += (to_x(np.concatenate(dis)), torch.tensor(lab))
    return out


FORTUNES = Path(os.environ.get("RECON_FORTUNES", "/usr/share/games/fortunes"))


def fortunes_texts(categories: tuple[str, ...], max_chars: int = 300) -> tuple[list[str], np.ndarray] | None:
    """Quotes of two or more categories of Debian's `fortunes` package (text this repository does not hold),
    one line each, as (texts, labels 0, 1, ...); None when the package is not installed."""
    texts, labels = [], []
    for k, cat in enumerate(categories):
        path = FORTUNES / cat
        if not path.is_file():
            return None
        for entry in path.read_text(errors="replace").split("\n%\n"):
            t = " ".join(entry.split())
            if 20 <= len(t) <= max_chars:
                texts.append(t)
                labels.append(k)
    return texts, np.asarray(labels)


@functools.cache
def _apt_records() -> str | None:
    """`apt-cache dumpavail` (every package record of apt's lists), read once per process; None without apt."""
    import shutil
    import subprocess

    if shutil.which("apt-cache") is None:
        return None
    return subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=False).stdout


def debian_texts(sections: tuple[str, ...]) -> tuple[list[str], np.ndarray] | None:
    """The one-line descriptions of Debian's packages in two or more archive sections (games, science, sound, ...:
    text this repository does not hold, from apt's package lists, `apt-cache dumpavail`), each description once and
    only in the first section that has it, as (texts, labels 0, 1, ...); None where apt has no lists."""
    dump = _apt_records()
    if dump is None:
        return None
    by_section: dict[str, list[str]] = {s: [] for s in sections}
    seen: set[str] = set()
    for record in dump.split("\n\n"):
        fields = dict(re.findall(r"^(Section|Description): (.*)$", record, re.MULTILINE))
        text, section = fields.get("Description", "").strip(), fields.get("Section", "").split("/")[-1]
        if section in by_section and len(text) >= 20 and text.lower() not in seen:
            seen.add(text.lower())
            by_section[section].append(text)
    if not any(by_section.values()):
        return None
    texts = [t for s in sections for t in by_section[s]]
    return texts, np.repeat(np.arange(len(sections)), [len(by_section[s]) for s in sections])


class TextSource(NamedTuple):
    read: Callable[[tuple[str, ...]], tuple[list[str], np.ndarray] | None]  # classes -> (texts, labels), None if absent
    what: str  # what one class is, for the line that names a short one
    install: str  # how to get the source where it is absent
    example: str  # two of its classes, for the line that asks for some


TEXT_SOURCES = {"fortunes": TextSource(fortunes_texts, "fortunes category", "apt-get install fortunes", "computers,people"),
                "debian": TextSource(debian_texts, "Debian section", "apt-get update: apt's package lists", "sound,graphics")}


def text_set(name: str, n_per_class: int, n_nonmembers: int, seed: int = 0) -> dict | None:
    """Unit-norm sentence embeddings of members, labelled non-members and a disjoint null draw of the
    members' size, for 'sst2' (../shared/data), 'fortunes:CAT_A,CAT_B[,...]' (Debian's fortunes, two or more
    categories) or 'debian:SECTION_A,SECTION_B[,...]' (Debian's package descriptions, two or more archive sections);
    MiniLM's, or another encoder's with an '@ENCODER' suffix (bench/encoders.py: 'sst2@mpnet')."""
    import encoders

    name, encoder = encoders.split(name)
    if name == "sst2":
        import pyarrow.parquet as pq

        root = shared_data()
        if root is None:
            return None
        table = pq.read_table(root / "sst2" / "train-00000-of-00001.parquet").to_pandas()
        texts, labels = list(table.sentence.values), table.label.values.astype(np.int64)
    else:
        source, _, listed = name.partition(":")
        class_names = listed.split(",")
        got = TEXT_SOURCES[source].read(tuple(class_names))
        if got is None:
            return None
        texts, labels = got
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    classes = int(labels.max()) + 1 if name == "sst2" else len(class_names)  # an empty section is a short class
    per_non = n_nonmembers // classes
    mem, non, null = [], [], []
    for c in range(classes):
        idx = order[labels[order] == c]
        if len(idx) < 2 * n_per_class + per_non:  # a short class would shrink the null or the non-members unsaid
            what = name if name == "sst2" else f"{TEXT_SOURCES[source].what} {class_names[c]!r}"
            raise short_class(what, f"{len(idx)} usable texts", n_per_class, per_non, True, " or pick a larger category")
        mem.append(idx[:n_per_class])
        null.append(idx[n_per_class : 2 * n_per_class])
        non.append(idx[2 * n_per_class : 2 * n_per_class + per_non])
    mem, non, null = (np.concatenate(v) for v in (mem, non, null))
    idx = np.concatenate([mem, non, null])
    key = f"{name.replace(':', '_').replace(',', '-')}_seed{seed}_{n_per_class}_{n_nonmembers}"
    if encoder != encoders.DEFAULT:
        key += f"_{encoders.path_of(encoder).resolve().name}"
    emb = _embed_cached([texts[i] for i in idx], key, None if encoder == encoders.DEFAULT else encoder)
    a, b = len(mem), len(mem) + len(non)
    lab = lambda ii: torch.tensor(labels[ii], dtype=torch.long)  # noqa: E731
    return {"members": emb[:a], "labels": lab(mem), "public": emb[a:b], "public_labels": lab(non),
            "null": emb[b:], "null_labels": lab(null), "texts": [texts[i] for i in mem], "l2": True}


def pixel_set(classes: list[int], n_per_class: int, n_nonmembers: int, seed: int = 0) -> dict | None:
    """CIFAR-10 pixels in the same layout as text_set (public labels balanced as the classes)."""
    if shared_data() is None:
        return None
    x, y, non, x2, y2 = cifar_pixels(classes, n_per_class, n_nonmembers, seed, disjoint=True)
    per = int(np.ceil(n_nonmembers / len(classes)))
    non_labels = torch.arange(len(classes)).repeat_interleave(per)[:n_nonmembers]
    return {"members": x, "labels": y, "public": non, "public_labels": non_labels, "null": x2, "null_labels": y2,
            "texts": None, "l2": False}
