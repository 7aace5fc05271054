"""Session files: round trip, determinism, and integrity failures that name what is wrong."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.support.bars import wave_bars
from ticktape.replay.fileformat import FORMAT, SessionFile, SessionFileError, check_session_file, write_session_file
from ticktape.replay.records import Record
from ticktape.replay.simulate import simulate_session


@pytest.fixture(scope="module")
def session():
    return simulate_session(wave_bars("BTCUSDT", 200), {}, "20250101T000000Z-abc123")


def written(tmp_path: Path, session, name: str = "s.ttsession.gz") -> Path:
    meta, records = session
    path = tmp_path / name
    write_session_file(path, meta, records)
    return path


def lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).split(b"\n")[:-1]


def rewrite(path: Path, new_lines: list[bytes]) -> None:
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in new_lines)))


def test_round_trip_gives_back_every_record_and_the_session(tmp_path, session):
    meta, records = session
    path = written(tmp_path, session)
    with SessionFile(path) as f:
        assert f.session == meta
        assert list(f.records()) == records
        assert f.header.format == FORMAT and f.header.counts.messages == len(records)
        assert f.header.counts.in_session == len(records)
        assert f.header.streams[0].first_seq == 1 and f.header.streams[0].last_seq == len(records)


def test_same_records_give_the_same_bytes(tmp_path, session):
    assert written(tmp_path, session, "a.gz").read_bytes() == written(tmp_path, session, "b.gz").read_bytes()


def test_each_line_is_plain_json_with_the_event_verbatim(tmp_path, session):
    _, records = session
    body = lines(written(tmp_path, session))
    header = json.loads(body[0])
    assert header["format"] == FORMAT and header["version"] == 1 and "h" in header
    first = json.loads(body[1])
    assert first["seq"] == records[0].seq and first["subject"] == records[0].subject
    assert json.dumps(first["data"], separators=(",", ":")).encode() == records[0].data


def test_a_payload_that_is_not_one_line_of_json_survives_as_base64(tmp_path):
    meta, records = simulate_session(wave_bars("BTCUSDT", 5), {}, "s")
    odd = [
        Record(stream="TICKTAPE", seq=r.seq, subject=r.subject, headers=r.headers, time=r.time, data=data)
        for r, data in zip(records, (b"\x00\xffbinary", b'{"a":\n1}', b" {} "), strict=False)  # the first three
    ]
    path = tmp_path / "odd.gz"
    write_session_file(path, meta, odd)
    with SessionFile(path) as f:
        assert list(f.records()) == odd


def test_one_changed_byte_fails_naming_the_line_and_the_event(tmp_path, session):
    _, records = session
    path = written(tmp_path, session)
    body = lines(path)
    index = next(i for i, line in enumerate(body) if b'"fills.' in line)
    rec = records[index - 1]
    body[index] = body[index].replace(b'"price":', b'"price":1', 1)
    rewrite(path, body)
    with pytest.raises(SessionFileError) as err:
        check_session_file(path)
    message = str(err.value)
    assert f"line {index + 1}" in message and f"seq {rec.seq}" in message
    assert json.loads(rec.data)["event_id"] in message


def test_a_changed_header_fails_naming_the_header(tmp_path, session):
    path = written(tmp_path, session)
    body = lines(path)
    body[0] = body[0].replace(b'"reason":"stopped"', b'"reason":"stoppeD"')
    rewrite(path, body)
    with pytest.raises(SessionFileError, match="line 1 \\(the header\\) was altered"):
        check_session_file(path)


def test_a_removed_line_breaks_the_chain_at_the_next_one(tmp_path, session):
    path = written(tmp_path, session)
    body = lines(path)
    del body[10]
    rewrite(path, body)
    with pytest.raises(SessionFileError, match="line 11 .* was removed or moved"):
        check_session_file(path)


def test_a_file_cut_short_mid_stream_is_reported_truncated(tmp_path, session):
    path = written(tmp_path, session)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SessionFileError, match="truncated"):
        check_session_file(path)


def test_a_file_cut_at_a_line_boundary_fails_the_header_count(tmp_path, session):
    _, records = session
    path = written(tmp_path, session)
    rewrite(path, lines(path)[:-5])
    with pytest.raises(SessionFileError, match=f"truncated: {len(records) - 5} of {len(records)} messages"):
        check_session_file(path)


def test_other_files_are_refused_clearly(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("hello\n")
    with pytest.raises(SessionFileError, match="not a ticktape-session file"):
        SessionFile(plain)
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(b'{"format":"something-else"}\n'))
    with pytest.raises(SessionFileError, match="not a ticktape-session file"):
        SessionFile(other)


def test_a_newer_format_version_is_refused(tmp_path):
    newer = tmp_path / "newer.gz"
    newer.write_bytes(gzip.compress(b'{"format":"ticktape-session","version":99}\n'))
    with pytest.raises(SessionFileError, match="newer ticktape"):
        SessionFile(newer)
