"""Victims: how a head is trained (a recipe = an input transform + a trainer), and the frame it saw."""
