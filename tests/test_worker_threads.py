"""Sweep workers take torch's CPU threads from their Ray num_cpus (the sweep spec's resources), at least 1."""

from __future__ import annotations

import pytest

from harness.runner.remote import threads_for


@pytest.mark.parametrize("assigned,threads", [
    ({"CPU": 1.0}, 1), ({"CPU": 2.0, "GPU": 0.25}, 2), ({"CPU": 0.5}, 1), ({}, 1), ({"GPU": 1.0}, 1), ({"CPU": 8.0}, 8),
])
def test_threads_follow_the_ray_cpus(assigned, threads):
    assert threads_for(assigned) == threads
