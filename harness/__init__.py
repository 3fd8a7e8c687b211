"""recon-harness: measure how much of a head's training data can be rebuilt from its weights."""

__version__ = "0.2.0"
