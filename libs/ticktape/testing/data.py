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
    """Path to a file under ../shared/data; skips the calling test when it is absent."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        import pytest

        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (the shared exchange captures folder)")
    return path
