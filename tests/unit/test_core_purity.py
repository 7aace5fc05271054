"""The core purity gate (ticktape.devtools.purity) catches what a core must not do, however it is
spelled: violations planted in a scratch core (and in a helper it imports) are each reported at
their line, and deterministic code that looks similar is not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ticktape.devtools import purity

pytestmark = pytest.mark.lint


def _check(root: Path, files: dict[str, str]) -> list[purity.Problem]:
    """Write scratch/<name>.py for each of files and check the closure of scratch/core.py."""
    package = root / "scratch"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in files.items():
        path = package / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return purity.check_closure(package / "core.py", roots={"scratch": root}, follow=["scratch"])


def _bad_lines(root: Path, name: str) -> set[int]:
    lines = (root / "scratch" / f"{name}.py").read_text().splitlines()
    return {i for i, line in enumerate(lines, 1) if "# bad" in line}


PLANTED = {
    "from time import time_ns": (
        """
        from time import time_ns  # bad

        def decide(x):
            return x + time_ns()  # bad
        """,
        "time.time_ns",
    ),
    "import time as t; t.monotonic()": (
        """
        import time as t

        def decide(x):
            return t.monotonic() - x  # bad
        """,
        "time.monotonic (as t.monotonic)",
    ),
    "from uuid import uuid4": (
        """
        from uuid import uuid4  # bad

        def new_id():
            return str(uuid4())
        """,
        "uuid4 from uuid (banned module uuid)",
    ),
    "import random": (
        """
        import random  # bad

        def jitter():
            return random.random()
        """,
        "imports random (banned module random)",
    ),
    "datetime.now() after from datetime import datetime as dt": (
        """
        from datetime import datetime as dt

        def stamp():
            return dt.now().isoformat()  # bad
        """,
        "datetime.datetime.now (as dt.now)",
    ),
    "open(...)": (
        """
        def load(path):
            with open(path) as f:  # bad
                return f.read()
        """,
        "builtins.open",
    ),
    "datetime.datetime.utcnow() after import datetime": (
        """
        import datetime

        def stamp():
            return datetime.datetime.utcnow()  # bad
        """,
        "datetime.datetime.utcnow",
    ),
    "from os import urandom": (
        """
        from os import urandom  # bad

        def salt():
            return urandom(8)
        """,
        "(banned module os)",
    ),
    "getattr(time, 'time')()": (
        """
        import time

        def decide():
            return getattr(time, "time")()  # bad
        """,
        "time.time",
    ),
    "clock = time.time (a reference, not a call)": (
        """
        import time

        clock = time.time  # bad
        """,
        "time.time",
    ),
    "hash() of a str is salted per process": (
        """
        def bucket(symbol):
            return hash(symbol) % 16  # bad
        """,
        "builtins.hash",
    ),
    "fromtimestamp without a tz is local time": (
        """
        from datetime import datetime

        def day(ts):
            return datetime.fromtimestamp(ts).date()  # bad
        """,
        "datetime.datetime.fromtimestamp without a tz",
    ),
}


@pytest.mark.parametrize("source, what", PLANTED.values(), ids=PLANTED.keys())
def test_a_violation_planted_in_a_core_is_reported_at_its_line(tmp_path, source, what):
    problems = _check(tmp_path, {"core": source})
    assert {p.line for p in problems} == _bad_lines(tmp_path, "core"), [str(p) for p in problems]
    assert all(p.path.name == "core.py" for p in problems)
    assert any(what in p.what for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize("spelling", ["from scratch.helper import stamp", "from .helper import stamp"])
def test_a_violation_in_a_helper_the_core_imports_is_reported_in_the_helper(tmp_path, spelling):
    problems = _check(
        tmp_path,
        {
            "core": f"""
                {spelling}

                def decide(bar):
                    return stamp(bar)
                """,
            "helper": """
                import time as clock

                def stamp(bar):
                    return (bar, clock.time_ns())  # bad
                """,
            "unused": """
                import random
                """,
        },
    )
    assert (
        [(p.path.name, p.line) for p in problems]
        == [("helper.py", 4)]
        == [("helper.py", line) for line in _bad_lines(tmp_path, "helper")]
    )
    assert "time.time_ns (as clock.time_ns)" in problems[0].what


def test_a_violation_two_imports_away_and_in_a_package_init_is_reported(tmp_path):
    problems = _check(
        tmp_path,
        {
            "core": "from scratch.sub.leaf import f\n",
            "sub/__init__": "import secrets  # bad\n",
            "sub/leaf": "from scratch.sub.deeper import g as f\n",
            "sub/deeper": "def g():\n    print('side effect')  # bad\n",
        },
    )
    assert sorted((p.path.relative_to(tmp_path).as_posix(), p.line) for p in problems) == [
        ("scratch/sub/__init__.py", 1),
        ("scratch/sub/deeper.py", 2),
    ]


def test_deterministic_code_that_looks_alike_is_not_reported(tmp_path):
    problems = _check(
        tmp_path,
        {
            "core": """
                from __future__ import annotations

                import math
                import time as t
                from datetime import UTC, date, datetime, timedelta
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    import asyncio

                def day(ts_ms: int, id: str, hash: str) -> tuple:
                    when = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
                    also = datetime.fromtimestamp(ts_ms / 1000, UTC)
                    parts = t.gmtime(ts_ms // 1000)
                    return (id, hash, when + timedelta(days=1), also, date(2024, 1, 1), parts, math.floor(1.5))

                class Clockless:
                    def now(self) -> int:
                        return 0

                def later(c: Clockless, loop: asyncio.AbstractEventLoop | None = None) -> int:
                    return c.now()
                """,
        },
    )
    assert problems == []


def test_the_problem_names_file_and_line():
    problem = purity.Problem(Path("services/x/core.py"), 7, "uses time.time")
    assert str(problem) == "services/x/core.py:7: uses time.time"


def test_id_is_waived_only_as_an_identity_key_on_a_line_that_says_so(tmp_path: Path) -> None:
    problems = _check(
        tmp_path,
        {
            "core": """
            def memo(seen, obj):
                key = id(obj)  # purity: identity only
                return seen.setdefault(key, len(seen))

            def leak(obj):
                return id(obj)  # bad: an address in an output
            """
        },
    )
    assert [(p.line, p.what.split(" (")[0]) for p in problems] == [(6, "uses builtins.id")]
