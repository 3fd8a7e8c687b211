"""The results directory's writer lock (harness/runner/lock.py) against the races two writers can run into."""

from __future__ import annotations

import fcntl
import os

from harness.runner import lock as lock_mod
from harness.runner.lock import StoreLock


def test_a_lock_taken_on_a_removed_lock_file_is_taken_again(tmp_path, monkeypatch):
    """A holder that wrote nothing removes the lock file as it lets go. A process that opened the file just before
    (and locks it just after) would hold a lock on a file no longer at the path while a third process locks a new
    one: two writers. The lock is taken again on the file at the path."""
    out = tmp_path / "out"
    real_flock, calls = fcntl.flock, []

    def flock_after_the_holder_left(fd, op):
        if not calls:  # the other holder lets go between our open and our flock
            (out / lock_mod.LOCK).unlink()
        calls.append(op)
        return real_flock(fd, op)

    monkeypatch.setattr(lock_mod.fcntl, "flock", flock_after_the_holder_left)
    with StoreLock(out) as held:
        fd = lock_mod._HELD[held.path][1]
        assert os.fstat(fd).st_ino == os.stat(held.path).st_ino
        assert len(calls) == 2


def test_a_directory_given_a_lock_by_another_process_is_kept(tmp_path, monkeypatch):
    """A holder that made the directory and wrote nothing removes it as it lets go, unless another process's lock
    file appeared there meanwhile (it raised 'Directory not empty')."""
    out = tmp_path / "out"
    real_unlink = lock_mod.Path.unlink

    def unlink_then_another_writer_arrives(self, missing_ok=False):
        real_unlink(self, missing_ok=missing_ok)
        (out / lock_mod.LOCK).write_text("")

    with StoreLock(out):
        monkeypatch.setattr(lock_mod.Path, "unlink", unlink_then_another_writer_arrives)
    assert (out / lock_mod.LOCK).exists()
