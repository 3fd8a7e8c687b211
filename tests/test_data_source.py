"""Data sources: a single local file is one split, read as 'train'."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.source import SINGLE_FILE_SPLIT, load_rows
from harness.errors import HarnessError
from harness.specs.task import DataSpec

FILE = Path(__file__).parent / "fixtures" / "sst2-train-400.parquet"


def test_a_single_file_is_read_as_the_train_split_and_another_split_name_is_refused():
    spec = DataSpec(source=str(FILE), input_column="sentence", label_column="label")
    assert spec.split == SINGLE_FILE_SPLIT and load_rows(spec).num_rows == 400
    with pytest.raises(HarnessError) as e:  # it was read whole and recorded as 'validation' on every row
        load_rows(spec.model_copy(update={"split": "validation"}))
    assert e.value.field == "data.split" and e.value.value == "validation"
    assert "one file, read whole as split 'train'" in e.value.line() and "split-named files" in e.value.line()
    with pytest.raises(HarnessError) as e:  # a second split of one file: named by its own field
        load_rows(spec.model_copy(update={"split": "test"}), split_field="data.nonmember_split")
    assert e.value.field == "data.nonmember_split" and "one file, one split" in e.value.line()
