"""kkt's search schedule (search.py): the modified ReLU's slope annealed over a run."""

import math

import torch

from harness.attacks.search import alpha_schedule


def test_alpha_is_annealed_geometrically_from_start_to_end():
    a = alpha_schedule(5, 4.0, 64.0, torch.float64)
    torch.testing.assert_close(a, torch.tensor([4.0, 8.0, 16.0, 32.0, 64.0], dtype=torch.float64))
    assert alpha_schedule(300, 20.0, 20.0).eq(20.0).all()  # the default: a constant slope
    one = alpha_schedule(1, 5.0, 50.0)  # a run of one iteration takes the start
    assert one.shape == (1,) and math.isclose(float(one[0]), 5.0)
