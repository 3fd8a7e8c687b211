"""recon-harness: measure how much of a head's training data can be rebuilt from its weights."""

import importlib.metadata

try:  # one version, pyproject.toml's, as installed (the one result rows record: provenance.py)
    __version__ = importlib.metadata.version("recon-harness")
except importlib.metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
