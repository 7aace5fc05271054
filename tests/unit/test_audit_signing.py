"""Signed audit checkpoints: the signed message, key files on disk, and chain verification with a
public key catching a chain rewritten consistently (every hash recomputed), forged signatures,
another key's signatures and a truncated tail."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.audit import chain, signing
from ticktape.audit.chain import Checkpoint, Row, verify
from ticktape.audit.verify import vouch
from ticktape.events.codec import encode

STREAM = "TICKTAPE"
BARS = [(subjects.for_event(b), encode(b)) for b in wave_bars(n=12)]


def build(messages: list[tuple[str, bytes]]) -> list[Row]:
    return chain.chain(STREAM, [(1 + i, s, d) for i, (s, d) in enumerate(messages)])


def signed(signer: signing.Signer, rows: list[Row], at: list[int]) -> list[Checkpoint]:
    """Checkpoints after rows[i] for i in at, signed the way the archiver signs them."""
    out = []
    for i in at:
        r = rows[i]
        out.append(Checkpoint(STREAM, r.seq, r.hash, i + 1, signer.sign(STREAM, r.seq, r.hash, i + 1), signer.key_id))
    return out


@pytest.fixture
def signer() -> signing.Signer:
    return signing.Signer.of(Ed25519PrivateKey.generate())


@pytest.fixture
def key(signer: signing.Signer) -> signing.PublicKey:
    return signing.PublicKey.of(signer.public_key)


def test_signed_message_is_the_documented_bytes():
    h = bytes(range(32))
    assert signing.signed_message("TICKTAPE", 42, h, 40) == (
        b"ticktape.audit.checkpoint/1\nTICKTAPE\n42\n" + h.hex().encode() + b"\n40\n"
    )
    assert signing.signed_message("A", 1, h, 11) != signing.signed_message("A", 11, h, 1)


def test_a_signature_verifies_only_for_the_exact_checkpoint_and_key(signer, key):
    h = bytes(32)
    sig = signer.sign(STREAM, 5, h, 5)
    assert len(sig) == 64 and len(signer.key_id) == 32
    assert key.problem(STREAM, 5, h, 5, sig, signer.key_id) is None
    assert key.problem(STREAM, 5, h, 6, sig, signer.key_id) is not None  # count changed
    assert key.problem(STREAM, 5, b"\x01" * 32, 5, sig, signer.key_id) is not None  # hash changed
    assert key.problem(STREAM, 5, h, 5, None, None) is not None  # unsigned
    other = signing.Signer.of(Ed25519PrivateKey.generate())
    assert other.key_id != signer.key_id
    assert key.problem(STREAM, 5, h, 5, other.sign(STREAM, 5, h, 5), other.key_id) is not None
    # another key's signature presented under this key's id still fails: the maths decides
    assert key.problem(STREAM, 5, h, 5, other.sign(STREAM, 5, h, 5), signer.key_id) is not None


def test_verify_with_the_key_when_intact_then_ok_and_reports_the_unsigned_tail(signer, key):
    rows = build(BARS)
    result = verify(rows, STREAM, checkpoints=signed(signer, rows, [3, 7]), vouch=vouch(key))
    assert result.ok and result.signed == 2 and result.signed_seq == rows[7].seq
    assert result.unsigned_rows == len(rows) - 8


def rewritten(rows: list[Row], index: int) -> list[Row]:
    """The whole chain rewritten consistently after changing one row's bytes: every hash from
    there on recomputed, so the unsigned chain verifies."""
    messages = [(r.subject, r.data) for r in rows]
    subject, data = messages[index]
    messages[index] = (subject, data.replace(b'"close":', b'"close":1', 1))
    assert messages[index][1] != data
    return build(messages)


def test_a_consistently_rewritten_chain_with_recomputed_unsigned_checkpoints_passes_without_the_key_only(signer, key):
    rows = build(BARS)
    forged = rewritten(rows, 2)
    # the forger recomputes the checkpoints too; without the private key they go unsigned
    recomputed = [Checkpoint(STREAM, forged[i].seq, forged[i].hash, i + 1) for i in (3, 7)]
    assert verify(forged, STREAM, checkpoints=recomputed).ok
    result = verify(forged, STREAM, checkpoints=recomputed, vouch=vouch(key))
    assert result.broken is not None and result.broken.kind == "signature"


def test_a_rewritten_chain_under_the_original_signed_checkpoints_fails_at_the_first_one(signer, key):
    rows = build(BARS)
    checkpoints = signed(signer, rows, [3, 7])
    forged = rewritten(rows, 2)
    result = verify(forged, STREAM, checkpoints=checkpoints, vouch=vouch(key))
    assert result.broken is not None and (result.broken.kind, result.broken.seq) == ("checkpoint", rows[3].seq)
    # re-signing the recomputed heads needs the key: the old signatures do not cover them
    moved = [dataclasses.replace(c, hash=forged[c.upto_seq - 1].hash) for c in checkpoints]
    result = verify(forged, STREAM, checkpoints=moved, vouch=vouch(key))
    assert result.broken is not None and (result.broken.kind, result.broken.seq) == ("signature", rows[3].seq)
    assert verify(forged, STREAM, checkpoints=moved).ok  # which the unsigned check cannot see


def test_checkpoints_signed_by_another_key_fail(signer, key):
    rows = build(BARS)
    other = signing.Signer.of(Ed25519PrivateKey.generate())
    result = verify(rows, STREAM, checkpoints=signed(other, rows, [3]), vouch=vouch(key))
    assert result.broken is not None and result.broken.kind == "signature"
    assert other.key_id in result.broken.detail


def test_with_the_key_a_log_without_any_signed_checkpoint_fails(key):
    rows = build(BARS)
    result = verify(rows, STREAM, vouch=vouch(key))
    assert result.broken is not None and result.broken.kind == "signature"
    assert verify([], STREAM, vouch=vouch(key)).ok  # an empty log claims nothing


def test_a_deleted_tail_is_reported_with_the_rows_missing_against_the_signed_count(signer, key):
    rows = build(BARS)
    result = verify(rows[:5], STREAM, checkpoints=signed(signer, rows, [3, 9]), vouch=vouch(key))
    assert result.broken is not None and (result.broken.kind, result.broken.seq) == ("checkpoint", rows[9].seq)
    assert "5 rows missing" in result.broken.detail


def test_key_files_are_made_once_private_and_reloaded(tmp_path):
    path = signing.key_path(tmp_path, None)
    assert path == (tmp_path / "keys" / "audit-ed25519.pem").resolve()
    first = signing.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    pub = signing.public_path(path)
    assert pub.name == "audit-ed25519.pub"
    assert signing.load_public(pub).key_id == first.key_id
    assert signing.load_or_create(path).key_id == first.key_id  # reused, not regenerated
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left
    path.chmod(0o644)
    with pytest.raises(signing.SigningKeyError, match="readable by others"):
        signing.load_or_create(path)


def test_two_processes_creating_the_key_at_once_end_up_with_the_same_key(tmp_path):
    path = signing.key_path(tmp_path, "custom/k.pem")
    ids: list[str] = []
    barrier = threading.Barrier(4)

    def make() -> None:
        barrier.wait()
        ids.append(signing.load_or_create(path).key_id)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert signing.load_public(signing.public_path(path)).key_id == ids[0]


def test_a_key_that_is_not_ed25519_pem_is_refused_naming_the_file(tmp_path):
    bad = tmp_path / "k.pem"
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(signing.SigningKeyError, match="k.pem"):
        signing.load_private(bad)
    with pytest.raises(signing.SigningKeyError, match="k.pem"):
        signing.load_public(bad)


def test_the_witness_keeps_the_latest_signed_checkpoint_only(signer, tmp_path):
    rows = build(BARS)
    early, late = signed(signer, rows, [3, 7])
    path = signing.witness_path(signing.key_path(tmp_path, None), STREAM)
    assert path is not None and path.parent.name == "audit-checkpoints"
    assert signing.read_witness(path) is None
    signing.write_witness(path, late)
    signing.write_witness(path, early)  # an older one (another archiver, late) does not replace it
    assert signing.read_witness(path) == late
    with pytest.raises(ValueError):
        signing.write_witness(path, dataclasses.replace(late, signature=None, key_id=None))
    assert signing.witness_path(path, "../etc") is None
    path.write_text("{")
    assert signing.read_witness(path) is None
