"""Results store: versioned Arrow schemas written as a Parquet dataset with atomic file writes."""

from harness.store.schemas import SCHEMA_VERSION, SCHEMAS
from harness.store.store import ResultStore

__all__ = ["SCHEMA_VERSION", "SCHEMAS", "ResultStore"]
