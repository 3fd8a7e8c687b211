"""Scoring candidates against members and a non-member control (needs the ground truth)."""
