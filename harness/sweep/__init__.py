"""Sweeps: a YAML grid of model cards x tasks x settings, expanded into units with stable ids."""

from harness.sweep.plan import PlannedUnit, SweepPlan, plan_sweep
from harness.sweep.spec import SweepSpec, load_sweep

__all__ = ["PlannedUnit", "SweepPlan", "SweepSpec", "load_sweep", "plan_sweep"]
