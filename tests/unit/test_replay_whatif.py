"""What-if runs and the replay command on session files (no NATS needed)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from tests.support.bars import wave_bars
from ticktape.cli.main import main
from ticktape.events import SignalGenerated
from ticktape.events.codec import decode
from ticktape.replay.fileformat import SessionFile, write_session_file
from ticktape.replay.simulate import simulate_session
from ticktape.replay.whatif import what_if_id

FAST5 = """
signal:
  strategies:
    - {kind: ema_cross, name: ema_cross_9_21, fast: 5, slow: 21}
risk:
  accounts:
    - {name: paper-main, strategies: ["*"]}
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    bars = sorted(
        wave_bars("BTCUSDT", 240) + wave_bars("ETHUSDT", 240, period=30), key=lambda b: (b.open_time, b.symbol)
    )
    meta, records = simulate_session(bars, {}, "20250101T000000Z-abc123")
    path = tmp_path / "source.ttsession.gz"
    write_session_file(path, meta, records)
    return path


@pytest.fixture
def other(tmp_path: Path) -> Path:
    path = tmp_path / "fast5.yaml"
    path.write_text(FAST5)
    return path


def what_if(source: Path, config: Path, out: Path) -> Path:
    assert main(["replay", str(source), "--config", str(config), "--out", str(out)]) == 0
    (session_file,) = out.glob("*.ttsession.gz")
    return session_file


def signals(path: Path) -> dict[tuple[str, str, int], str]:
    with SessionFile(path) as f:
        return {
            (e.strategy, e.symbol, e.bar_open_time): e.side
            for r in f.records()
            if isinstance(e := decode(r.data), SignalGenerated) and e.strategy == "ema_cross_9_21"
        }


def test_the_same_what_if_twice_gives_byte_identical_files(source, other, tmp_path):
    first = what_if(source, other, tmp_path / "a")
    second = what_if(source, other, tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    report_a, report_b = first.parent / first.name.split(".")[0], second.parent / second.name.split(".")[0]
    names = sorted(p.name for p in report_a.iterdir())
    assert names == ["equity.png", "index.html", "summary.json", "trades.csv"]
    for name in names:
        assert (report_a / name).read_bytes() == (report_b / name).read_bytes(), name


def test_a_what_if_is_a_new_session_derived_from_the_source_and_its_config(source, other, tmp_path):
    path = what_if(source, other, tmp_path / "out")
    with SessionFile(path) as f, SessionFile(source) as src:
        assert f.session.derived_from == src.session.session_id
        assert f.session.session_id == what_if_id(src.session.session_id, f.session.config_hash)
        assert json.loads(f.session.config)["signal"]["strategies"][0]["fast"] == 5
        assert f.session.config_hash != src.session.config_hash


def test_a_changed_ema_period_changes_the_signals(source, other, tmp_path):
    changed = signals(what_if(source, other, tmp_path / "out"))
    recorded = signals(source)
    assert changed and recorded and changed != recorded


def test_the_report_matches_the_run(source, other, tmp_path):
    path = what_if(source, other, tmp_path / "out")
    report = path.parent / path.name.split(".")[0]
    summary = json.loads((report / "summary.json").read_text())
    trades = (report / "trades.csv").read_text().splitlines()
    with SessionFile(path) as f:
        fills = sum(1 for r in f.records() if r.subject.startswith("fills.") and r.in_session)
    assert summary["trade_count"] == fills == len(trades) - 1 > 0
    account = summary["accounts"]["paper-main"]
    assert summary["pnl"] == pytest.approx(account["end_equity"] - account["start_equity"])
    assert 0 <= summary["max_drawdown_pct"] < 1
    assert (report / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (report / "index.html").read_text()


def test_replay_verify_passes_on_a_recording_and_on_a_what_if(source, other, tmp_path):
    assert main(["replay", str(source), "--verify"]) == 0
    assert main(["replay", str(what_if(source, other, tmp_path / "out")), "--verify"]) == 0


def test_replay_verify_fails_with_exit_1_when_a_recorded_output_differs(source, tmp_path):
    with SessionFile(source) as f:
        meta, records = f.session, list(f.records())
    i = next(i for i, r in enumerate(records) if r.subject.startswith("positions."))
    doc = json.loads(records[i].data)
    doc["quantity"] *= 2
    records[i] = msgspec.structs.replace(records[i], data=json.dumps(doc, separators=(",", ":")).encode())
    forged = tmp_path / "forged.ttsession.gz"
    write_session_file(forged, meta, records)  # a consistent file whose history is not what the cores do
    assert main(["replay", str(forged), "--verify"]) == 1


def test_replay_of_a_damaged_file_fails_with_exit_2(source, tmp_path):
    damaged = tmp_path / "damaged.ttsession.gz"
    damaged.write_bytes(source.read_bytes()[:-100])
    assert main(["replay", str(damaged), "--verify"]) == 2
