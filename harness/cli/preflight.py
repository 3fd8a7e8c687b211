"""Every input of `recon-harness run` checked before the first stage: bad input is one line, and
nothing is written (no marker, no head, no cache entry) and no library output precedes it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import remote_code_warning
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec
from harness.store.store import ResultStore, check_writable_dir, safe_name


@contextlib.contextmanager
def quiet_libraries():
    """No Python warnings, `datasets` log lines or progress bars while inputs are checked."""
    import datasets.utils.logging  # noqa: F401 - its import sets its logger's level: first, so ours holds after it

    loggers = [logging.getLogger(n) for n in ("datasets", "huggingface_hub", "fsspec", "filelock")]
    levels = [lg.level for lg in loggers]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for lg in loggers:
                lg.setLevel(logging.ERROR + 10)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def cache_field(cache: str | None) -> tuple[Path, str]:
    """The embedding cache directory and the name of the setting that chose it."""
    from harness.cache_dir import default_cache_dir

    if cache:
        return Path(cache), "--cache"
    return default_cache_dir(), "RECON_HARNESS_CACHE" if os.environ.get("RECON_HARNESS_CACHE") else "--cache (default)"


def check_outputs(args) -> None:
    """--out (a writable results directory of this schema, or a new one, not lost with a Ray job) and the cache."""
    from harness.runner.cluster import check_out_outlives_job

    check_out_outlives_job(args.out)
    ResultStore.check(Path(args.out), "--out")
    cache, field = cache_field(args.cache)
    check_writable_dir(cache, field)


def check_run(args, task: TaskSpec, card: ModelCard, unit, base_dir: Path | None, given=None) -> None:
    """Result file names, the given head (`given`, loaded from --head), the data (rows, nulls, columns against the
    card's modality, classes, counts)."""
    for kind in ("real", "null"):  # the head files this unit writes: out/heads/<unit>-<kind>.safetensors
        safe_name(f"{unit.unit_id}-{kind}", "name")
    if given is not None:
        check_head(args.head, given.head, card, task)
    with quiet_libraries():
        from harness.data.check import check_modality
        from harness.data.source import load_rows
        from harness.data.split import load_split

        rows = load_rows(task.data, base_dir)
        check_modality(rows, task.data.input_column, card, card_given=bool(args.model))
        load_split(task, base_dir, rows=rows)


def check_head(path: str, head, card: ModelCard, task: TaskSpec) -> None:
    """The given head fits what is known before embedding (the card's dim, the classes)."""
    from harness.heads.losses import output_dim, outputs_mismatch

    if card.dim and head.in_dim != card.dim:
        raise HarnessError("--head", path, f"takes {head.in_dim}-d inputs but model card {card.name!r} embeds to {card.dim}-d")
    if head.out_dim != output_dim(task.head.loss, len(task.classes)):
        raise HarnessError("--head", path, outputs_mismatch(head.out_dim, task.head.loss, len(task.classes)))


def warn_remote_code(card: ModelCard) -> None:
    line = remote_code_warning(card)
    if line:
        print(line, file=sys.stderr)
