"""A run that has ../shared/data never goes green by skipping the tests that read it."""

from __future__ import annotations

import pytest

from ticktape.testing.data import shared_data, shared_data_dir


def test_shared_data_when_folder_present_but_file_missing_then_the_test_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKTAPE_SHARED_DATA", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="present .* but has no octobot/none.data"):
        shared_data("octobot", "none.data")


def test_shared_data_when_folder_absent_then_the_test_skips_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKTAPE_SHARED_DATA", str(tmp_path / "absent"))
    with pytest.raises(pytest.skip.Exception, match=r"needs \.\./shared/data/x\.json"):
        shared_data("x.json")


def test_shared_data_when_file_present_then_its_path(tmp_path, monkeypatch):
    (tmp_path / "x.json").write_text("{}")
    monkeypatch.setenv("TICKTAPE_SHARED_DATA", str(tmp_path))
    assert shared_data("x.json") == tmp_path / "x.json"
    assert shared_data_dir() == tmp_path
