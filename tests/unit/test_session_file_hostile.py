"""Session files from anywhere: the reader either reads a file or raises SessionFileError naming
what is wrong, never another exception, and its memory is bounded by its line limit.

A corpus of the inputs that crashed or bloated the reader is kept as regression tests (generated
here, not stored): a gzip bomb (one endless line), JSON nested deeper than the decoder's stack,
a data_b64 that is not base64 behind a valid hash chain. Hypothesis then fuzzes the reader with
random bytes, damaged files, and hash-chained lines of random JSON with extremes of size and depth."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bars import wave_bars
from tests.support.hostile import gzip_bomb, peak_rss_mib
from ticktape.replay.fileformat import MAX_LINE_BYTES, SessionFile, SessionFileError, write_session_file
from ticktape.replay.records import Record
from ticktape.replay.simulate import simulate_session

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a small genuine session file."""
    meta, records = simulate_session(wave_bars("BTCUSDT", 5), {}, "20250101T000000Z-abc123")
    path = tmp_path_factory.mktemp("valid") / "s.ttsession.gz"
    write_session_file(path, meta, records)
    return path.read_bytes()


def header_body(valid: bytes) -> bytes:
    """The genuine header line without its hash member."""
    first = gzip.decompress(valid).split(b"\n", 1)[0]
    return first[: first.rindex(b',"h":')] + b"}"


def chained(bodies: list[bytes]) -> bytes:
    """Lines that pass the hash chain: each JSON object body sealed with its "h" member."""
    prev, out = b"", []
    for body in bodies:
        h = hashlib.sha256(prev + body).hexdigest().encode()
        out.append(body[:-1] + b',"h":"' + h + b'"}\n' if body.endswith(b"}") else body + b"\n")
        prev = h
    return b"".join(out)


def message(**fields: object) -> bytes:
    line = {"stream": "TICKTAPE", "seq": 1, "subject": "md.bar.x", "time": 1, **fields}
    return json.dumps(line, separators=(",", ":")).encode()


def outcome(path: Path, content: bytes, max_line_bytes: int = MAX_LINE_BYTES) -> str:
    """'ok' or the SessionFileError's message; any other exception fails the test."""
    path.write_bytes(content)
    try:
        with SessionFile(path, max_line_bytes) as f:
            for _ in f.records():
                pass
    except SessionFileError as exc:
        assert str(exc).startswith(str(path))
        return str(exc)
    return "ok"


# ---- the regression corpus -------------------------------------------------------------------


def test_a_line_longer_than_the_limit_fails_naming_the_line_and_the_limit(tmp_path, valid):
    body = gzip.decompress(valid).split(b"\n")
    long_line = b'{"stream":"' + b"x" * 5000 + b'"}'
    error = outcome(tmp_path / "f.gz", gzip.compress(b"\n".join([body[0], long_line, b""])), max_line_bytes=4096)
    assert "line 2 is longer than the limit of 4096 bytes" in error
    error = outcome(tmp_path / "f.gz", gzip.compress(b"[" * 5000 + b"\n"), max_line_bytes=4096)
    assert "line 1 is longer than the limit of 4096 bytes" in error


def test_a_line_of_exactly_the_limit_is_read(tmp_path, valid):
    lines = gzip.decompress(valid).split(b"\n")[:-1]
    limit = max(len(line) for line in lines)
    assert outcome(tmp_path / "f.gz", valid, max_line_bytes=limit) == "ok"
    assert "longer than the limit" in outcome(tmp_path / "f.gz", valid, max_line_bytes=limit - 1)


def test_json_nested_beyond_the_decoders_stack_fails_cleanly(tmp_path, valid):
    deep = b"[" * 100_000 + b"]" * 100_000
    for line in (deep, message()[:-1] + b',"data":' + deep + b"}", message()[:-1] + b',"x":' + deep + b"}"):
        error = outcome(tmp_path / "f.gz", gzip.compress(chained([header_body(valid), line])))
        assert "line 2: JSON nested deeper than" in error
    assert "line 1: JSON nested deeper" in outcome(tmp_path / "f.gz", gzip.compress(chained([b"[" * 5000 + b"}"])))


def test_a_data_b64_that_is_not_base64_fails_cleanly(tmp_path, valid):
    for bad in ("a", "\x80", "QUJD!"):
        error = outcome(tmp_path / "f.gz", gzip.compress(chained([header_body(valid), message(data_b64=bad)])))
        assert "line 2 has a bad data_b64" in error


def test_damaged_containers_fail_cleanly(tmp_path, valid):
    path = tmp_path / "f.gz"
    assert "empty file" in outcome(path, b"")
    assert "not a ticktape-session file" in outcome(path, b"PK\x03\x04 a zip")
    assert "truncated" in outcome(path, valid[: len(valid) // 2])
    assert "corrupt" in outcome(path, valid[:-8] + b"\x00" * 8) or "CRC" in outcome(path, valid[:-8] + b"\x00" * 8)
    (tmp_path / "dir.gz").mkdir()
    with pytest.raises(SessionFileError, match="cannot open"):
        SessionFile(tmp_path / "dir.gz")


def test_a_payload_nested_deeper_than_a_reader_accepts_is_written_as_base64(tmp_path):
    meta, records = simulate_session(wave_bars("BTCUSDT", 2), {}, "s")
    deep = b"[" * 3000 + b"]" * 3000
    odd = [Record(stream="TICKTAPE", seq=1, subject=records[0].subject, headers={}, time=1, data=deep)]
    path = tmp_path / "deep.gz"
    write_session_file(path, meta, odd)
    with SessionFile(path) as f:
        assert [r.data for r in f.records()] == [deep]


def test_a_gzip_bomb_fails_early_in_bounded_memory(tmp_path):
    path = tmp_path / "bomb.ttsession.gz"
    gzip_bomb(path, 256)  # the reader before the bound held it twice over: > 512 MiB
    assert path.stat().st_size < 4 * 2**20
    code, err, peak = peak_rss_mib("ticktape", "import", "--check", str(path))
    assert code == 1 and f"line 1 is longer than the limit of {MAX_LINE_BYTES} bytes" in err
    assert peak < 200, f"peak RSS {peak} MiB"


# ---- fuzzing ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["stream", "seq", "subject", "time", "in_session", "headers", "data", "data_b64", "x"]),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


extreme_lines = st.one_of(
    st.builds(lambda v: json.dumps(v, separators=(",", ":")).encode(), json_values),
    st.builds(lambda d: message(data=json.loads(nested(d))) if d < 500 else nested(d), st.integers(0, 5000)),
    st.builds(lambda d: message()[:-1] + b',"data":' + nested(d) + b"}", st.integers(0, 5000)),
    st.builds(lambda n: message(data_b64="A" * n), st.integers(0, 20_000)),
    st.builds(lambda s: message(data_b64=s), st.text(max_size=40)),
    st.builds(lambda n: message(seq=n, time=n), st.integers(min_value=-(2**80), max_value=2**80)),
    st.builds(lambda n: message(subject="x" * n, headers={"k" * n: "v"}), st.integers(0, 70_000)),
    st.binary(max_size=200),
)


@FUZZ
@given(content=st.binary(max_size=4000))
def test_random_bytes_read_or_fail_cleanly(tmp_path, content):
    outcome(tmp_path / "f.gz", content)
    outcome(tmp_path / "f.gz", gzip.compress(content))


@FUZZ
@given(data=st.data())
def test_damaged_genuine_files_fail_cleanly(tmp_path, valid, data):
    cut = data.draw(st.integers(0, len(valid) - 1))
    assert outcome(tmp_path / "f.gz", valid[:cut]) != "ok"
    plain = bytearray(gzip.decompress(valid))
    for _ in range(data.draw(st.integers(1, 5))):
        plain[data.draw(st.integers(0, len(plain) - 1))] = data.draw(st.integers(0, 255))
    outcome(tmp_path / "f.gz", gzip.compress(bytes(plain)))
    raw = bytearray(valid)
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    outcome(tmp_path / "f.gz", bytes(raw))


@FUZZ
@given(
    lines=st.lists(extreme_lines, max_size=6), header=st.booleans(), limit=st.sampled_from([64, 4096, MAX_LINE_BYTES])
)
def test_hash_chained_lines_of_any_json_read_or_fail_cleanly(tmp_path, valid, lines, header, limit):
    bodies = [header_body(valid), *lines] if header else lines
    outcome(tmp_path / "f.gz", gzip.compress(chained(bodies)), max_line_bytes=limit)


@FUZZ
@given(header=json_values, fmt=st.booleans())
def test_any_header_reads_or_fails_cleanly(tmp_path, header, fmt):
    doc = dict(header) if isinstance(header, dict) else {"x": header}
    if fmt:
        doc["format"] = "ticktape-session"
    body = json.dumps(doc, separators=(",", ":")).encode()
    outcome(tmp_path / "f.gz", gzip.compress(chained([body, message()])))


def test_a_stream_that_zlib_rejects_fails_cleanly(tmp_path, valid):
    broken = valid[:10] + zlib.compress(b"not deflate of the header")[2:] + valid[-8:]
    assert outcome(tmp_path / "f.gz", broken) != "ok"
    assert outcome(tmp_path / "f.gz", base64.b64encode(valid)) != "ok"
