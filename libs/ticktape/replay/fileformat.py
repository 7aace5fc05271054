"""Session files: portable, compressed, self-describing, tamper-evident recordings.

A gzip (mtime 0, no name, so the same input gives the same bytes) of JSON Lines:
- line 1, the header: {"format": "ticktape-session", "version": 1, "session": {...},
  "streams": [{"name", "first_seq", "last_seq", "messages"}], "counts": {...}};
- then one line per stored message, in stream order: {"stream", "seq", "subject", "time" (ns the
  server stored it), "in_session" (omitted when false), "headers", "data" (the event JSON,
  verbatim) or "data_b64" (for a payload that is not single-line JSON)}.
Every line ends with a member "h": the hex SHA-256 of the previous line's h (none for the header)
followed by this line's bytes without its "h" member. Any changed byte breaks the chain at that
line, so a check names the message that was altered; a short file fails its header's counts.

Reading is bounded, because a session file may come from anywhere: a line longer than the
reader's max_line_bytes (default MAX_LINE_BYTES, far above what a bus message can need) or JSON
nested deeper than jsonlimits allows fails with SessionFileError naming the line, before the line
is held in memory whole or decoded; every other defect fails the same way, never otherwise.
Writing never carries a secret: the session's recorded configuration (in the header and in its
SessionStarted records) is redacted again with today's rules (ticktape.sessions.redacted_config),
which leaves a clean recording byte for byte as it was."""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from ticktape import jsonlimits
from ticktape.redact import redact_text
from ticktape.replay.records import Record, SessionMeta, family
from ticktape.sessions import redacted_config

FORMAT = "ticktape-session"
VERSION = 1
SUFFIX = ".ttsession.gz"
# The longest line a reader accepts by default: a message line holds one bus message (NATS
# payloads are 1 MiB by default and 64 MiB at most) as JSON or base64, plus its headers.
MAX_LINE_BYTES = 16 * 1024 * 1024
# A line nests its message's JSON two levels deep (the line object, then "data").
_MAX_LINE_DEPTH = jsonlimits.MAX_DEPTH + 2

_HASH = re.compile(rb',"h":"([0-9a-f]{64})"}$')


class SessionFileError(ValueError):
    """A session file cannot be read or fails its integrity check; the message says where."""


class StreamRange(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    first_seq: int
    last_seq: int
    messages: int


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    messages: int
    in_session: int
    families: dict[str, int]


class Header(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    version: int
    session: SessionMeta
    streams: list[StreamRange]
    counts: Counts


class _Line(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    stream: str
    seq: int
    subject: str
    time: int
    in_session: bool = False
    headers: dict[str, str] = {}
    data: msgspec.Raw = msgspec.Raw(b"")  # empty = absent: the payload is in data_b64
    data_b64: str | None = None


class _Probe(msgspec.Struct):
    format: str = ""
    version: int = 0


_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(_Line)
_header_decoder = msgspec.json.Decoder(Header)
_probe_decoder = msgspec.json.Decoder(_Probe)


def _verbatim_json(data: bytes) -> bool:
    """True when data can be embedded as-is: one line of valid JSON without outer whitespace."""
    if not data or b"\n" in data or b"\r" in data or data != data.strip():
        return False
    try:
        jsonlimits.decode(data)  # deeper than a reader accepts: kept as base64
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        return False
    return True


def encode_record(rec: Record) -> bytes:
    """The line of one message, without its hash."""
    if _verbatim_json(rec.data):
        line = _Line(
            stream=rec.stream,
            seq=rec.seq,
            subject=rec.subject,
            time=rec.time,
            in_session=rec.in_session,
            headers=rec.headers,
            data=msgspec.Raw(rec.data),
        )
    else:
        line = _Line(
            stream=rec.stream,
            seq=rec.seq,
            subject=rec.subject,
            time=rec.time,
            in_session=rec.in_session,
            headers=rec.headers,
            data_b64=base64.b64encode(rec.data).decode(),
        )
    return _encoder.encode(line)


def _chain(prev: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev + body).hexdigest().encode()


def _sealed(body: bytes, prev: bytes) -> tuple[bytes, bytes]:
    h = _chain(prev, body)
    return body[:-1] + b',"h":"' + h + b'"}\n', h


_CHUNK_BYTES = 1 << 20  # lines are handed to the compressor in chunks of about this size


class SessionWriter:
    """Writes a session file incrementally: add() records in stream order, then finish() with
    the session once it is known. Lines are spooled to a temporary file first so the header can
    carry the counts; the file appears at `path` atomically, only when finished."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the writer; finish() / __exit__ close it
        self._streams: dict[str, list[int]] = {}
        self._families: dict[str, int] = {}
        self._total = self._in_session = 0

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self._spool.close()

    def add(self, rec: Record) -> None:
        rec = _without_secrets(rec)
        self._spool.write(encode_record(rec) + b"\n")
        self._total += 1
        self._in_session += rec.in_session
        fam = family(rec.subject)
        self._families[fam] = self._families.get(fam, 0) + 1
        rng = self._streams.setdefault(rec.stream, [rec.seq, rec.seq, 0])
        rng[0], rng[1], rng[2] = min(rng[0], rec.seq), max(rng[1], rec.seq), rng[2] + 1

    def finish(self, session: SessionMeta) -> Header:
        header = Header(
            format=FORMAT,
            version=VERSION,
            session=msgspec.structs.replace(session, config=redacted_config(session.config)),
            streams=[
                StreamRange(name=n, first_seq=r[0], last_seq=r[1], messages=r[2]) for n, r in self._streams.items()
            ],
            counts=Counts(
                messages=self._total, in_session=self._in_session, families=dict(sorted(self._families.items()))
            ),
        )
        self._spool.seek(0)
        tmp = self.path.with_name(self.path.name + ".tmp")
        # zlib's default level: within 4% of level 9's size in a third less time
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            line, prev = _sealed(_encoder.encode(header), b"")
            chunk = [line]
            size = 0
            for body in self._spool:
                line, prev = _sealed(body.rstrip(b"\n"), prev)
                chunk.append(line)
                size += len(line)
                if size >= _CHUNK_BYTES:
                    gz.write(b"".join(chunk))
                    chunk, size = [], 0
            gz.write(b"".join(chunk))
        os.replace(tmp, self.path)
        self._spool.close()
        return header


def _without_secrets(rec: Record) -> Record:
    """A session lifecycle record with its configuration redacted again (see the module
    docstring); every other record, and a clean one, as it is."""
    if family(rec.subject) != "sessions":
        return rec
    try:
        doc = jsonlimits.decode(rec.data)
    except (msgspec.DecodeError, jsonlimits.TooDeep):
        return rec
    config = doc.get("config_json") if isinstance(doc, dict) else None
    if not isinstance(config, str) or (clean := redacted_config(config)) == config:
        return rec
    return msgspec.structs.replace(rec, data=_encoder.encode({**doc, "config_json": clean}))


def write_session_file(path: Path, session: SessionMeta, records: Iterable[Record]) -> Header:
    """Write records (in stream order) as a session file at path; returns the header."""
    with SessionWriter(path) as writer:
        for rec in records:
            writer.add(rec)
        return writer.finish(session)


class SessionFile:
    """An open session file: `header` is read and checked on open; `records()` yields the
    messages, checking each line's hash, and raises SessionFileError naming the first problem."""

    def __init__(self, path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        try:
            self._gz: gzip.GzipFile = gzip.open(self.path, "rb")  # noqa: SIM115 - read by records() until close() / __exit__
        except OSError as exc:
            raise SessionFileError(f"{self.path}: cannot open: {exc}") from None
        try:
            self._open()
        except BaseException:
            self._gz.close()
            raise

    def _open(self) -> None:
        self._lineno = 0
        self._prev = b""
        self._last: str = "the header"
        first = self._next_line()
        if first is None:
            raise SessionFileError(f"{self.path}: empty file: not a {FORMAT} file")
        try:
            probe = _probe_decoder.decode(first)
        except msgspec.DecodeError:
            raise SessionFileError(f"{self.path}: line 1 is not JSON: not a {FORMAT} file") from None
        if probe.format != FORMAT:
            raise SessionFileError(f"{self.path}: not a {FORMAT} file (format {probe.format!r})")
        if probe.version > VERSION:
            raise SessionFileError(
                f"{self.path}: format version {probe.version} was written by a newer "
                f"ticktape; this build reads up to version {VERSION}"
            )
        body = self._check(first, "the header")
        try:
            self.header = _header_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise SessionFileError(f"{self.path}: bad header: {exc}") from None

    def __enter__(self) -> SessionFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._gz.close()

    @property
    def session(self) -> SessionMeta:
        """The header's session, redacted on read (a file written before a form of secret was
        recognised still carries it: its sealed bytes are evidence and stay as they are)."""
        meta = self.header.session
        return msgspec.structs.replace(meta, config=redacted_config(meta.config), host=redact_text(meta.host))

    def records(self) -> Iterator[Record]:
        expected = self.header.counts.messages
        count = 0
        while (line := self._next_line()) is not None:
            body = self._check(line, None)
            try:
                item = _line_decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise SessionFileError(f"{self.path}: line {self._lineno} is not a message line: {exc}") from None
            count += 1
            if count > expected:
                raise SessionFileError(f"{self.path}: more messages than the header's {expected}")
            try:
                data = bytes(item.data) if item.data_b64 is None else base64.b64decode(item.data_b64, validate=True)
            except ValueError as exc:  # binascii.Error, or a character that is not ASCII
                raise SessionFileError(f"{self.path}: line {self._lineno} has a bad data_b64: {exc}") from None
            self._last = f"{item.stream} seq {item.seq}"
            yield Record(
                stream=item.stream,
                seq=item.seq,
                subject=item.subject,
                headers=item.headers,
                time=item.time,
                data=data,
                in_session=item.in_session,
            )
        if count < expected:
            raise SessionFileError(
                f"{self.path}: truncated: {count} of {expected} messages (last complete: {self._last})"
            )

    def _next_line(self) -> bytes | None:
        """The next line without its newline (None at the end): read at most max_line_bytes + 1
        bytes, so an endless line costs no more memory than the limit."""
        try:
            line = self._gz.readline(self.max_line_bytes + 1)
        except EOFError:
            raise SessionFileError(
                f"{self.path}: truncated: the file ends inside line {self._lineno + 1} (last complete: {self._last})"
            ) from None
        except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            if self._lineno == 0:
                raise SessionFileError(f"{self.path}: not a {FORMAT} file ({exc})") from None
            raise SessionFileError(
                f"{self.path}: corrupt compressed data after line {self._lineno} (last intact: {self._last}): {exc}"
            ) from None
        if not line:
            return None
        self._lineno += 1
        if len(line) > self.max_line_bytes and not line.endswith(b"\n"):
            raise SessionFileError(
                f"{self.path}: line {self._lineno} is longer than the limit of {self.max_line_bytes} bytes "
                f"(last complete: {self._last}); if the file is genuine, raise the limit (ticktape import "
                "--max-line-mib)"
            )
        if not line.endswith(b"\n"):
            raise SessionFileError(
                f"{self.path}: truncated: line {self._lineno} is incomplete (last complete: {self._last})"
            )
        try:
            jsonlimits.check_depth(line, _MAX_LINE_DEPTH)
        except jsonlimits.TooDeep as exc:
            raise SessionFileError(f"{self.path}: line {self._lineno}: {exc}, more than a message can hold") from None
        return line[:-1]

    def _check(self, line: bytes, what: str | None) -> bytes:
        m = _HASH.search(line)
        body = line[: m.start()] + b"}" if m else line
        if m is None or _chain(self._prev, body) != m.group(1):
            raise SessionFileError(
                f"{self.path}: line {self._lineno} ({what or _describe(body)}) was altered "
                "(or a line just before it was removed or moved): it fails the hash chain"
            )
        self._prev = m.group(1)
        return body


def _describe(body: bytes) -> str:
    """Best effort name of the message on a line whose bytes may be damaged."""
    try:
        item = _line_decoder.decode(body)
    except msgspec.DecodeError:
        return "an unreadable message line"
    event_id = None
    if len(item.data):
        with contextlib.suppress(msgspec.DecodeError, AttributeError):
            event_id = msgspec.json.decode(bytes(item.data)).get("event_id")
    return f"{item.stream} seq {item.seq}, {item.subject}" + (f", event {event_id}" if event_id else "")


def check_session_file(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Header:
    """Read the whole file, verifying every line; returns the header or raises SessionFileError."""
    with SessionFile(path, max_line_bytes) as f:
        for _ in f.records():
            pass
        return f.header
