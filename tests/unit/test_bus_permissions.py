"""Bus authorization without a server: the permission table follows the data flow and comes from
the registry and CHANNELS alone; credentials files are private and reused; an event must belong
on the subject it arrives on."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from tests.support.bars import wave_bars
from ticktape import registry, subjects
from ticktape.bus import creds, permissions
from ticktape.bus.permissions import ADMIN, OBSERVER, OPERATOR, PermissionsError
from ticktape.config import NatsSettings
from ticktape.control import control_event
from ticktape.events import OrderApproved
from ticktape.events.codec import DecodeError, encode
from ticktape.registry import ServiceInfo

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = NatsSettings()
TABLE = {p.role: p for p in permissions.table(SETTINGS)}
SERVICES = registry.names()


def may_publish(role: str, subject: str) -> bool:
    return any(subjects.matches(pattern, subject) for pattern in TABLE[role].publish)


def test_every_service_and_each_tool_role_has_exactly_one_entry():
    assert list(TABLE) == [*SERVICES, ADMIN, OPERATOR, OBSERVER]


@pytest.mark.parametrize(
    ("subject", "only"),
    [
        ("md.bar.binance_usdm.BTCUSDT.1m", "market_data"),
        ("md.trade.binance_usdm.BTCUSDT", "market_data"),
        ("symbols.universe.binance_usdm", "symbol_registry"),
        ("signals.ensemble.binance_usdm.BTCUSDT", "signal"),
        ("risk.approved.paper-main.BTCUSDT", "risk"),
        ("risk.rejected.paper-main.BTCUSDT", "risk"),
        ("orders.paper-main.BTCUSDT", "execution"),
        ("fills.paper-main.BTCUSDT", "execution"),
        ("positions.paper-main.BTCUSDT", "execution"),
        ("accounts.paper-main", "execution"),
        ("control.emergency_stop", OPERATOR),
        ("control.resume", OPERATOR),
        ("sessions.20250101T000000Z-abcdef", ADMIN),
        ("dlq.risk", "risk"),
    ],
)
def test_each_subject_family_has_exactly_one_publisher(subject, only):
    assert [role for role in TABLE if may_publish(role, subject)] == [only]


def test_the_table_is_the_channels_publishers():
    """No second list: every channel's subjects go to its publisher (CHANNELS), and nothing else
    outside the JetStream plumbing does."""
    for role, perms in TABLE.items():
        domain = permissions.domain_subjects(role)
        plumbing = [p for p in perms.publish if p not in domain]
        assert all(p.startswith(("$JS.", "$O.", "imported.")) for p in plumbing), (role, plumbing)
    for channel in subjects.CHANNELS:
        pattern = permissions.channel_pattern(channel.template)
        owners = [r for r in TABLE if pattern in TABLE[r].publish]
        if channel.publisher == "any service":
            assert owners == [], "each service gets only its own dead-letter subject"
        else:
            assert len(owners) == 1, (channel.template, owners)


def test_only_admin_provisions_streams():
    for api in ("STREAM.CREATE", "STREAM.UPDATE", "STREAM.DELETE", "STREAM.PURGE", "STREAM.MSG.DELETE"):
        for stream in (SETTINGS.stream, SETTINGS.dlq_stream, SETTINGS.trades_stream):
            subject = f"$JS.API.{api}.{stream}"
            assert [r for r in TABLE if may_publish(r, subject)] == [ADMIN], subject


def test_a_service_reads_only_the_streams_it_declares_and_acks_only_its_own_durables():
    assert may_publish("audit", f"$JS.API.CONSUMER.MSG.NEXT.{SETTINGS.dlq_stream}.audit")
    assert not may_publish("signal", f"$JS.API.CONSUMER.MSG.NEXT.{SETTINGS.dlq_stream}.audit")
    assert not may_publish("symbol_registry", f"$JS.API.CONSUMER.CREATE.{SETTINGS.stream}")
    assert may_publish("risk", f"$JS.ACK.{SETTINGS.stream}.risk.1.5.5.1700000000000000000.0")
    assert not may_publish("signal", f"$JS.ACK.{SETTINGS.stream}.risk.1.5.5.1700000000000000000.0")


def test_observer_subscribes_to_everything_and_publishes_nothing_and_no_one_else_subscribes_freely():
    assert TABLE[OBSERVER].publish == () and TABLE[OBSERVER].subscribe == (">",)
    for role in TABLE:
        if role != OBSERVER:
            assert TABLE[role].subscribe == ("_INBOX.>",), role


def test_a_new_service_and_channel_need_no_second_edit(monkeypatch):
    extra = ServiceInfo(name="hedger", kind="core", order=55, module="services.hedger", config="x:y", durables=("h",))
    channel = subjects.Channel("hedges.{account}", subjects.EVENTS_STREAM, (OrderApproved,), "hedger", "test")
    monkeypatch.setattr(subjects, "CHANNELS", (*subjects.CHANNELS, channel))
    table = {p.role: p for p in permissions.table(SETTINGS, (*registry.services(), extra))}
    assert "hedges.*" in table["hedger"].publish and "dlq.hedger" in table["hedger"].publish
    assert f"$JS.ACK.{SETTINGS.stream}.h.>" in table["hedger"].publish


def test_a_channel_whose_publisher_is_unknown_is_an_error(monkeypatch):
    channel = subjects.Channel("ghost.{x}", subjects.EVENTS_STREAM, (OrderApproved,), "ghost", "test")
    monkeypatch.setattr(subjects, "CHANNELS", (*subjects.CHANNELS, channel))
    with pytest.raises(PermissionsError, match="'ghost', which is neither a registered service"):
        permissions.table(SETTINGS)


def test_a_service_that_reads_an_unknown_stream_is_refused_by_the_registry():
    odd = ServiceInfo(name="odd", kind="producer", order=99, module="services.odd", config="x:y", reads=("nope",))
    with pytest.raises(registry.RegistryError, match="reads unknown stream 'nope'; allowed: events, dlq, trades"):
        registry.validate([odd])


def test_a_service_named_like_a_tool_role_is_an_error():
    clash = ServiceInfo(name="observer", kind="producer", order=99, module="services.observer", config="x:y")
    with pytest.raises(PermissionsError, match="reserved for a bus role"):
        permissions.table(SETTINGS, (*registry.services(), clash))


def test_authorization_block_has_a_user_per_role_and_refuses_unsafe_passwords():
    passwords = {role: f"pw-{role}-0123456789abcdef" for role in TABLE}
    block = permissions.authorization_block(tuple(TABLE.values()), passwords)
    users = [json.loads(line) for line in block.splitlines() if line.strip().startswith("{")]
    assert [u["user"] for u in users] == list(TABLE)
    assert next(u for u in users if u["user"] == OBSERVER)["permissions"]["publish"] == {"deny": [">"]}
    with pytest.raises(PermissionsError, match="16\\+ characters"):
        permissions.authorization_block(tuple(TABLE.values()), {**passwords, "risk": 'short"'})


def test_readme_security_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert permissions.markdown_table() in readme, "README's Security model table: paste permissions.markdown_table()"


# --- credentials files


def test_credentials_are_private_one_file_per_role_and_reused(tmp_path):
    directory = tmp_path / "creds"
    first = creds.ensure(directory, permissions.roles())
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(p.name for p in directory.iterdir())
    assert files == sorted(f"{role}.json" for role in permissions.roles())
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    again = creds.ensure(directory, permissions.roles(), url="nats://127.0.0.1:4333")
    assert again == first, "a home's passwords are generated once and kept"
    assert len({c.password for c in first.values()}) == len(first)
    doc = json.loads(creds.path_for(directory, OBSERVER).read_text())
    assert doc["url"] == "nats://127.0.0.1:4333" and doc["user"] == OBSERVER  # a natscli context
    assert first[OBSERVER].password not in repr(first[OBSERVER])


def test_a_credentials_file_others_can_read_or_a_malformed_one_is_refused(tmp_path):
    creds.ensure(tmp_path / "c", ["risk"])
    path = creds.path_for(tmp_path / "c", "risk")
    path.chmod(0o644)
    with pytest.raises(creds.CredentialsError, match="readable by others: chmod 600"):
        creds.load(path)
    path.write_text("not json")
    path.chmod(0o600)
    with pytest.raises(creds.CredentialsError, match="string fields user and password"):
        creds.load(path)
    with pytest.raises(creds.CredentialsError, match="cannot read"):
        creds.load(tmp_path / "missing.json")


# --- defence in depth: an event must belong on its subject


BAR = wave_bars(n=1)[0]


def test_an_event_on_its_own_subject_is_accepted():
    subject = subjects.for_event(BAR)
    assert subjects.decode_on(subject, encode(BAR)) == BAR


@pytest.mark.parametrize(
    "subject",
    [
        "risk.approved.paper-main.BTCUSDT",  # a bar where approvals travel
        "md.bar.binance_usdm.ETHUSDT.1m",  # a bar on another symbol's subject
        "nowhere.at.all",
    ],
)
def test_an_event_on_a_foreign_subject_is_a_mismatch(subject):
    with pytest.raises(subjects.SubjectMismatch, match=re.escape(subject)):
        subjects.decode_on(subject, encode(BAR))


def test_a_mismatch_is_a_decode_error_so_every_replay_path_skips_it_as_live_does():
    assert issubclass(subjects.SubjectMismatch, DecodeError)


def test_control_command_event_ids_derive_from_what_and_when():
    a = control_event("stop", "maintenance", "*", 1)
    assert a == control_event("stop", "maintenance", "*", 1)
    assert a.event_id != control_event("stop", "maintenance", "*", 2).event_id
    assert subjects.for_event(a) == subjects.CONTROL_EMERGENCY_STOP
    assert subjects.for_event(control_event("resume", "done", "*", 3)) == subjects.CONTROL_RESUME
