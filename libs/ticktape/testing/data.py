"""Where the shared exchange captures live at test time (../shared/data beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]


def shared_data_dir() -> Path:
    """TICKTAPE_SHARED_DATA if set, else ../shared/data next to the repository."""
    env = os.environ.get("TICKTAPE_SHARED_DATA")
    return Path(env) if env else (_REPO.parent / "shared" / "data").resolve()


def shared_data(*parts: str) -> Path:
    """Path to a file under ../shared/data. When the folder is absent the calling test skips,
    naming it; when the folder is there but lacks the file, the test fails: a run that has the
    data must never go green by skipping the tests that read it."""
    import pytest

    root = shared_data_dir()
    path = root.joinpath(*parts)
    if path.exists():
        return path
    rel = "/".join(parts)
    if root.is_dir():
        pytest.fail(f"../shared/data is present ({root}) but has no {rel}: see its MANIFEST.md", pytrace=False)
    pytest.skip(f"needs ../shared/data/{rel} (the shared exchange captures folder, absent here)")
