"""Write a fine-tune's members and held-out rows as a Hub-layout Parquet directory (train / test)."""

from __future__ import annotations

from pathlib import Path

from harness.data.split import MemberSplit
from harness.specs.task import TaskSpec


def write_splits(folder: Path, task: TaskSpec, split: MemberSplit) -> None:
    """data/train-00000-of-00001.parquet (the members) and data/test-... (the non-members), the label a
    ClassLabel over the split's class names, so a task names them as it did."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    col, lab = task.data.input_column, task.data.label_column
    image = isinstance(split.member_inputs[0], str) is False
    feats = datasets.Features({col: datasets.Image() if image else datasets.Value("string"),
                               lab: datasets.ClassLabel(names=split.class_names)})
    for name, inputs, labels in (("train", split.member_inputs, split.member_labels),
                                 ("test", split.nonmember_inputs, split.nonmember_labels)):
        ds = datasets.Dataset.from_dict({col: list(inputs), lab: [int(v) for v in labels]}, features=feats)
        ds.to_parquet(str(folder / f"{name}-00000-of-00001.parquet"))
