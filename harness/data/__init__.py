"""Task data: load a data set, check its columns and classes, split members from non-members."""

from harness.data.check import check_modality
from harness.data.split import MemberSplit, load_split

__all__ = ["MemberSplit", "check_modality", "load_split"]
