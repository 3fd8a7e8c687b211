"""Victim diagnostics that tell why an attack can or cannot succeed (algorithms.md §3)."""
