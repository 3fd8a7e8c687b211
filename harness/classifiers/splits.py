"""Write a fine-tune's members and held-out rows as a Hub-layout Parquet directory (train / test)."""

from __future__ import annotations

from pathlib import Path

from harness.data.split import MemberSplit
from harness.specs.task import TaskSpec


def write_splits(folder: Path, task: TaskSpec, split: MemberSplit) -> None:
    """data/train-00000-of-00001.parquet (the members) and data/test-... (the non-members), each row with its
    label value as the source data held it (a ClassLabel over the source's own names, or the plain integers or
    strings of a column without names), so the task's classes, integers included, mean the same classes when
    read back from these files as they did when the checkpoint was fine-tuned."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    col, lab = task.data.input_column, task.data.label_column
    image = isinstance(split.member_inputs[0], str) is False
    if split.class_values is None:  # a split built by hand: its class names, in its order
        values, label = list(range(len(split.class_names))), datasets.ClassLabel(names=split.class_names)
    elif split.label_names:
        values, label = split.class_values, datasets.ClassLabel(names=split.label_names)
    else:
        values = split.class_values
        label = datasets.Value("string") if any(isinstance(v, str) for v in values) else datasets.Value("int64")
    feats = datasets.Features({col: datasets.Image() if image else datasets.Value("string"), lab: label})
    for name, inputs, labels in (("train", split.member_inputs, split.member_labels),
                                 ("test", split.nonmember_inputs, split.nonmember_labels)):
        ds = datasets.Dataset.from_dict({col: list(inputs), lab: [values[int(v)] for v in labels]}, features=feats)
        ds.to_parquet(str(folder / f"{name}-00000-of-00001.parquet"))
