"""Pick the members (per class, seeded), a disjoint non-member pool of the same classes and, for
the 'disjoint' null victim, a third disjoint draw of the members' size (the control's training set)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.data.source import load_rows
from harness.errors import HarnessError, did_you_mean
from harness.specs.task import TaskSpec, check_loss_fits_classes


@dataclass
class MemberSplit:
    class_names: list[str]
    member_inputs: list[Any]
    member_labels: np.ndarray  # class index into class_names
    member_rows: np.ndarray  # row indices in the source split
    nonmember_inputs: list[Any]
    nonmember_labels: np.ndarray
    nonmember_rows: np.ndarray
    null_inputs: list[Any] = field(default_factory=list)  # training set of the 'disjoint' null victim
    null_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    null_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    class_values: list | None = None  # each class's label value in the data (class_names[i] is its name there)
    label_names: list[str] | None = None  # the data's ClassLabel names (value k is label_names[k]); None: no names
    repeats: int = 0  # rows left out of the draw: their input repeats an earlier row's (or, from nonmember_split, a row of data.split)

    @property
    def n(self) -> int:
        return len(self.member_rows)


def _class_ids(task: TaskSpec, ds) -> tuple[list[int], list[str], np.ndarray]:
    """Map the task's classes to label values in the data; returns (values, names, label column).

    One rule for integer classes (docs/finetuned.md): an integer (or digits that are not a class name of the
    data) is a label value of the data, a ClassLabel's stored integer or an integer column's value; never a
    position in a list or a checkpoint's output index. An integer that is also the name of another ClassLabel
    value is refused as ambiguous."""
    feature = ds.features[task.data.label_column]
    names = list(getattr(feature, "names", []) or [])
    labels = np.asarray(ds[task.data.label_column])
    values, out_names = [], []
    for c in task.classes:
        if names:
            if isinstance(c, int) or (isinstance(c, str) and c.isdigit() and c not in names):
                idx = int(c)
                if not 0 <= idx < len(names):
                    raise HarnessError("classes", c, f"no label value {idx} in the data: an integer class is a label "
                                       f"value, and its {len(names)} classes are 0..{len(names) - 1} "
                                       f"({', '.join(names[:20])}); give a value or a class name")
                if str(c) in names and names.index(str(c)) != idx:
                    raise HarnessError("classes", c, f"ambiguous: label value {idx} of the data is named {names[idx]!r} "
                                       f"and the class named {str(c)!r} is label value {names.index(str(c))}; give the "
                                       f"name as a quoted string ({str(c)!r}) or the value of another name")
            elif c in names:
                idx = names.index(c)
            else:
                raise HarnessError("classes", c, f"not a class of the data{did_you_mean(c, names)}; classes: {', '.join(names)}")
            values.append(idx)
            out_names.append(names[idx])
        else:
            present = {str(v): v for v in np.unique(labels)}
            whole = {str(int(v)): v for v in present.values()  # 0.0 / 1.0: what pandas writes once a column held NaN
                     if isinstance(v, (float, np.floating)) and float(v).is_integer()}
            if str(c) not in present and str(c) in whole:
                present[str(c)] = whole[str(c)]  # the integer class is that label value
            if str(c) not in present:
                if len(present) > 50 and len(present) * 2 > len(labels):  # most rows unique: not a label column
                    raise HarnessError("data.label_column", task.data.label_column,
                                       f"holds {len(present)} distinct values in {len(labels)} rows, not class labels "
                                       f"(class {c!r} is none of them); name the column that holds the classes")
                shown = [v if len(v) <= 30 else v[:29] + "…" for v in sorted(present)[:10]]
                more = f" and {len(present) - 10} more" if len(present) > 10 else ""
                floats = [v for v in present.values() if isinstance(v, (float, np.floating))]
                hint = (f"; the labels are numbers with a fraction: give each as a quoted string as written "
                        f"(classes: [{', '.join(repr(v) for v in shown[:2])}])" if floats else "; give one of them")
                raise HarnessError("classes", c, f"no rows with this label; labels present: {', '.join(shown)}{more}{hint}")
            values.append(present[str(c)])
            out_names.append(str(c))
    return values, out_names, labels


def load_split(task: TaskSpec, base_dir: Path | None = None, rows=None) -> MemberSplit:
    """The split of `task`; `rows` is the task's data set when already loaded by `load_rows`. With
    `data.nonmember_split`, non-members come from that split (rows index into it), members and the
    null draw from `data.split`."""
    check_loss_fits_classes(task, HarnessError)  # a trained head's loss; a checkpoint's task (checkpoint_task) has ce
    ds = rows if rows is not None else load_rows(task.data, base_dir)
    values, names, labels = _class_ids(task, ds)
    col = task.data.input_column
    seen: set = set()
    first = _first_of_each(ds, col, seen)  # one person, one row: a repeated input is drawn once, in one role
    repeats = int((~first).sum())
    other = task.data.nonmember_split
    if other:
        ds_non = load_rows(task.data.model_copy(update={"split": other}), base_dir, "data.nonmember_split")
        non_values, _, non_labels = _class_ids(task, ds_non)
        non_first = _first_of_each(ds_non, col, seen)  # an input of data.split is no non-member either
        repeats += int((~non_first).sum())
    else:
        ds_non, non_values, non_labels, non_first = ds, values, labels, first
    rng = np.random.default_rng(task.seed)
    k = len(values)
    non_per_class = [task.nonmembers // k + (1 if i < task.nonmembers % k else 0) for i in range(k)]
    per_null = task.per_class if task.null_victim == "disjoint" else 0
    mem_rows, mem_lab, non_rows, non_lab, null_rows, null_lab = [], [], [], [], [], []
    for ci, (value, name) in enumerate(zip(values, names)):
        rows = rng.permutation(np.flatnonzero(labels == value))
        rows = rows[first[rows]]  # after the permutation: a data set without repeats draws as it always did
        if other:
            pool = rng.permutation(np.flatnonzero(non_labels == non_values[ci]))
            pool = pool[non_first[pool]]
            if len(pool) < non_per_class[ci]:
                raise HarnessError("nonmembers", task.nonmembers, f"split {other!r} has {len(pool)} rows of class {name!r}, "
                                   f"fewer than {non_per_class[ci]}; lower nonmembers")
            if len(rows) < task.per_class + per_null:
                _too_few(task, name, len(rows), 0, per_null)
            non, rest = pool[: non_per_class[ci]], rows[task.per_class :]
        else:
            need = task.per_class + non_per_class[ci]
            if len(rows) < need + per_null:
                _too_few(task, name, len(rows), non_per_class[ci], per_null)
            non, rest = rows[task.per_class : need], rows[need:]
        mem_rows.append(rows[: task.per_class])
        non_rows.append(non)
        null_rows.append(rest[:per_null])
        mem_lab.append(np.full(task.per_class, ci))
        non_lab.append(np.full(non_per_class[ci], ci))
        null_lab.append(np.full(per_null, ci))
    mem_rows, non_rows, null_rows = np.concatenate(mem_rows), np.concatenate(non_rows), np.concatenate(null_rows)
    return MemberSplit(
        class_names=names,
        class_values=[v.item() if hasattr(v, "item") else v for v in values],
        label_names=_label_names(task, ds),
        member_inputs=list(ds.select(mem_rows.tolist())[col]),
        member_labels=np.concatenate(mem_lab),
        member_rows=mem_rows,
        nonmember_inputs=list(ds_non.select(non_rows.tolist())[col]) if len(non_rows) else [],
        nonmember_labels=np.concatenate(non_lab),
        nonmember_rows=non_rows,
        null_inputs=list(ds.select(null_rows.tolist())[col]) if len(null_rows) else [],
        null_labels=np.concatenate(null_lab),
        null_rows=null_rows,
        repeats=repeats,
    )


def _first_of_each(ds, col: str, seen: set) -> np.ndarray:
    """Which rows hold an input not seen before (in `seen`, which the call extends): scraped data repeats itself,
    and a repeated input drawn as a member and as a non-member (or into the null victim's training draw) would
    set the threshold on the member itself and let the control "reconstruct" it. Texts compare by their words
    (spacing aside: "" and "  " are one input); images by their encoded bytes (an image folder's: its file's),
    read without decoding them."""
    first = np.ones(len(ds), dtype=bool)
    for i, v in enumerate(ds.with_format("arrow")[col].to_pylist()):
        key = " ".join(v.split()) if isinstance(v, str) else hashlib.sha256(_image_bytes(v)).digest()
        first[i] = key not in seen
        seen.add(key)
    return first


def _image_bytes(v) -> bytes:
    """An image cell's encoded bytes: stored in the data, or in the file its path names (an image folder)."""
    if isinstance(v, dict):
        if v.get("bytes") is not None:
            return v["bytes"]
        if v.get("path") and Path(v["path"]).is_file():
            return Path(v["path"]).read_bytes()
    return repr(v).encode()


def _label_names(task: TaskSpec, ds) -> list[str] | None:
    return list(getattr(ds.features[task.data.label_column], "names", []) or []) or None


def _too_few(task: TaskSpec, name: str, have: int, non: int, null: int) -> None:
    """Name the field that asks for more rows than class `name` has (per_class, nonmembers or null_victim) and
    every change that alone would fit: `non` non-members and `null` rows for the disjoint null from this class."""
    asked = f"class {name!r} has {have} rows, fewer than {task.per_class} members + {non} non-members" + (
        f" + {null} for the disjoint null victim" if null else ""
    )
    null_fits = bool(null) and task.per_class + non <= have  # the members and non-members fit without a third draw
    fixes = []
    if (most := (have - non) // (2 if null else 1)) >= 1:  # the disjoint null draws per_class rows of its own
        fixes.append(f"lower per_class to at most {most}")
    if non and (room := have - task.per_class - null) >= 1:
        fixes.append(f"lower nonmembers to at most {room * len(task.classes)}")
    if null_fits:
        fixes.append("use null_victim: shuffled (no third draw)")
    fix = ", or ".join(fixes) if fixes else "use data with more rows of this class"
    if have < task.per_class + null:
        raise HarnessError("per_class", task.per_class, f"{asked}; {fix}")
    if null_fits:
        raise HarnessError("null_victim", task.null_victim, f"{asked}; {fix}")
    raise HarnessError("nonmembers", task.nonmembers, f"{asked}; {fix}")
