"""heap.py: the allocator thresholds that keep an attack's freed tensors in the heap."""

import ctypes
import sys

import pytest

from harness.attacks import heap, make_attack


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(heap, "_applied", None)


def glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(ctypes.CDLL("libc.so.6").gnu_get_libc_version)
    except (OSError, AttributeError):
        return False


@pytest.mark.skipif(not glibc(), reason="the thresholds are glibc's")
def test_building_an_attack_sets_the_thresholds_once(fresh, monkeypatch):
    calls = []
    real = heap._set_thresholds
    monkeypatch.setattr(heap, "_set_thresholds", lambda: calls.append(1) or real())
    make_attack("kkt", {"m": 4})
    make_attack("kkt-reference", {"m": 4})
    assert heap.keep_freed_memory() is True and calls == [1]


def test_opting_out_leaves_the_allocator_alone(fresh, monkeypatch):
    monkeypatch.setenv("RECON_HARNESS_KEEP_FREED_MEMORY", "0")
    monkeypatch.setattr(ctypes, "CDLL", lambda *a, **k: pytest.fail("mallopt called despite the opt-out"))
    assert heap.keep_freed_memory() is False
