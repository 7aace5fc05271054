"""A configuration file that cannot be used (a directory, as Docker mounts a missing file; not
UTF-8; not YAML; not a mapping; nested beyond reason) is a config error: one line naming the path
and what is wrong, exit 78 from every service and from `ticktape up`, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ticktape import config as cfg
from ticktape import registry


def unusable(tmp_path: Path) -> dict[str, Path]:
    files = {
        "a directory": tmp_path / "dir.yaml",
        "not UTF-8": tmp_path / "binary.yaml",
        "not valid YAML": tmp_path / "broken.yaml",
        "a mapping": tmp_path / "list.yaml",
        "nests too deeply": tmp_path / "deep.yaml",
    }
    files["a directory"].mkdir()
    files["not UTF-8"].write_bytes(b"\xff\xfe\x00garbage")
    files["not valid YAML"].write_text("signal:\n  password: hunter2 : [\n")
    files["a mapping"].write_text("- signal\n- risk\n")
    files["nests too deeply"].write_text("[" * 50_000)
    return files


def test_an_unusable_config_file_is_a_one_line_config_error_naming_it(tmp_path):
    for what, path in unusable(tmp_path).items():
        with pytest.raises(cfg.ConfigError) as err:
            cfg.load_raw(env={"TICKTAPE_CONFIG": str(path)})
        message = str(err.value)
        assert what in message and str(path) in message and "\n" not in message
        assert "hunter2" not in message  # a YAML error says where, without quoting the file


def test_a_ticktape_yaml_directory_in_the_working_directory_is_a_config_error(tmp_path, monkeypatch):
    (tmp_path / "ticktape.yaml").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cfg.ConfigError, match="ticktape.yaml is a directory"):
        cfg.load_raw(env={})


def run(argv: list[str], config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update(TICKTAPE_CONFIG=str(config), TICKTAPE_HOME=str(cwd / "home"))
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("service", registry.names())
def test_every_service_exits_78_on_a_config_directory(tmp_path, service):
    config = unusable(tmp_path)["a directory"]
    done = run([sys.executable, "-m", registry.get(service).module], config, tmp_path)
    assert done.returncode == cfg.EXIT_CONFIG, done.stderr
    assert done.stderr.count("\n") == 1 and str(config) in done.stderr and "is a directory" in done.stderr


def test_ticktape_up_exits_78_on_any_unusable_config(tmp_path):
    for what, path in unusable(tmp_path).items():
        done = run([sys.executable, "-m", "ticktape", "up", "--config", str(path)], path, tmp_path)
        assert done.returncode == cfg.EXIT_CONFIG, done.stderr
        assert done.stderr.count("\n") == 1 and what in done.stderr and str(path) in done.stderr
