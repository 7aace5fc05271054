"""A start removes the lock files of a postmaster that was killed, and only those: a lock whose
pid is alive stays (PostgreSQL then refuses to start on a directory another server uses)."""

from __future__ import annotations

import os
import subprocess
import sys

from ticktape.infra.postgres import _remove_stale_locks


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: nothing answers to this pid any more (until the kernel reuses it)
    return proc.pid


def write_lock(path, pid: int) -> None:
    path.write_text(f"{pid}\n/data\n1700000000\n5432\n")


def test_locks_of_a_dead_postmaster_are_removed(tmp_path):
    pid = dead_pid()
    write_lock(tmp_path / "postmaster.pid", pid)
    write_lock(tmp_path / ".s.PGSQL.5432.lock", pid)
    _remove_stale_locks(tmp_path, 5432)
    assert not (tmp_path / "postmaster.pid").exists()
    assert not (tmp_path / ".s.PGSQL.5432.lock").exists()


def test_locks_of_a_live_process_stay(tmp_path):
    write_lock(tmp_path / "postmaster.pid", os.getpid())
    write_lock(tmp_path / ".s.PGSQL.5432.lock", os.getpid())
    _remove_stale_locks(tmp_path, 5432)
    assert (tmp_path / "postmaster.pid").exists()
    assert (tmp_path / ".s.PGSQL.5432.lock").exists()


def test_a_lock_of_another_port_or_none_at_all_is_left_alone(tmp_path):
    write_lock(tmp_path / ".s.PGSQL.6000.lock", dead_pid())
    _remove_stale_locks(tmp_path, 5432)  # no postmaster.pid: nothing to do
    assert (tmp_path / ".s.PGSQL.6000.lock").exists()
