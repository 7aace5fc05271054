"""Signed audit checkpoints: an ed25519 key kept outside PostgreSQL signs each checkpoint, so a
chain rewritten consistently in the database (every hash recomputed) no longer matches them.

The hash chain alone proves that rows were not changed *unless* whoever changed them recomputed
every hash after the change and every checkpoint too: anyone who can write the database can. A
checkpoint signed with a key the database never sees cannot be recomputed: `ticktape audit verify
--public-key` checks every signature and that each signed head hash is the recomputed chain's hash
at that seq. The message signed for a checkpoint is, byte for byte:

    b"ticktape.audit.checkpoint/1\\n"
    + stream (UTF-8) + b"\\n" + upto_seq (ASCII decimal) + b"\\n"
    + hash (64 lowercase hex digits) + b"\\n" + count (ASCII decimal) + b"\\n"

The key id is the first 16 bytes, hex, of sha256 of the raw 32-byte public key. The private key is
a PKCS#8 PEM file (mode 0600 in a 0700 directory, default <home>/keys/audit-ed25519.pem), its
public key a SubjectPublicKeyInfo PEM file beside it (`.pub`). Signing and verifying is
`cryptography`'s Ed25519; nothing here is hand-rolled.

Signatures cannot stop someone from deleting the log's tail together with the checkpoints over
it. So the archiver also keeps its latest signed checkpoint per stream outside PostgreSQL, beside
the key (`audit-checkpoints/<stream>.json`, the witness); verification adds it to the database's
checkpoints, and a log that ends before it is reported with the number of rows missing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ticktape.audit.chain import Checkpoint

SIGNED_TAG = b"ticktape.audit.checkpoint/1\n"
DEFAULT_KEY = Path("keys") / "audit-ed25519.pem"
PUBLIC_SUFFIX = ".pub"
DIR_MODE = 0o700
FILE_MODE = 0o600
WITNESS_DIR = "audit-checkpoints"
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class SigningKeyError(ValueError):
    """A key file is missing, unreadable, too open or not an ed25519 key; the message names it."""


def signed_message(stream: str, upto_seq: int, hash_: bytes, count: int) -> bytes:
    """The bytes a checkpoint's signature covers (see the module docstring)."""
    return b"".join(
        (
            SIGNED_TAG,
            stream.encode(),
            b"\n",
            str(upto_seq).encode(),
            b"\n",
            hash_.hex().encode(),
            b"\n",
            str(count).encode(),
            b"\n",
        )
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    """The fingerprint stored with each signature: sha256 of the raw public key, 32 hex digits."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class Signer:
    """The audit service's private key; `sign` returns (signature, key id) for a checkpoint."""

    private_key: Ed25519PrivateKey
    key_id: str

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> Signer:
        return cls(private_key, key_id(private_key.public_key()))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, stream: str, upto_seq: int, hash_: bytes, count: int) -> bytes:
        return self.private_key.sign(signed_message(stream, upto_seq, hash_, count))


@dataclass(frozen=True)
class PublicKey:
    """A verifier's public key and its id."""

    key: Ed25519PublicKey
    key_id: str

    @classmethod
    def of(cls, key: Ed25519PublicKey) -> PublicKey:
        return cls(key, key_id(key))

    def problem(
        self, stream: str, upto_seq: int, hash_: bytes, count: int, signature: bytes | None, kid: str | None
    ) -> str | None:
        """Why this checkpoint is not vouched for by the key, or None when its signature is valid."""
        if signature is None:
            return "the checkpoint is not signed"
        if kid != self.key_id:
            return f"the checkpoint is signed by key {kid}, not by {self.key_id}"
        try:
            self.key.verify(signature, signed_message(stream, upto_seq, hash_, count))
        except InvalidSignature:
            return "the signature does not match the checkpoint's seq, hash and count"
        return None


def key_path(home: str | Path, configured: str | None) -> Path:
    """audit.signing_key (relative paths are relative to home), else <home>/keys/audit-ed25519.pem."""
    base = Path(home).resolve()
    return (base / (configured or DEFAULT_KEY)).resolve()


def public_path(private_path: Path) -> Path:
    return private_path.with_suffix(PUBLIC_SUFFIX)


def load_or_create(path: Path) -> Signer:
    """The private key at `path`, generated there on first use (and its public key written beside
    it). Refuses a key file others can read. Safe when two processes start at once: the key is
    written to a temporary file and hard-linked into place, and the loser loads the winner's."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        path.parent.chmod(DIR_MODE)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = _write_private(path, pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    signer = load_private(path)
    pub = public_path(path)
    want = public_pem(signer.public_key)
    if not pub.exists() or pub.read_bytes() != want:
        _write_public(pub, want)
    return signer


def load_private(path: Path) -> Signer:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the audit signing key {path}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise SigningKeyError(f"the audit signing key {path} is readable by others: chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"the audit signing key {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"the audit signing key {path} is not an ed25519 key")
    return Signer.of(key)


def load_public(path: Path) -> PublicKey:
    """A SubjectPublicKeyInfo PEM ed25519 public key (the `.pub` beside the private key)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the audit public key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SigningKeyError(f"the audit public key {path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"the audit public key {path} is not an ed25519 key")
    return PublicKey.of(key)


def _write_private(path: Path, pem: bytes) -> Path:
    """A new file beside path holding pem, never readable by others, not even for an instant."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _write_public(path: Path, pem: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(pem)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def witness_path(private_path: Path, stream: str) -> Path | None:
    """Where the latest signed checkpoint of `stream` is kept beside the key (None for a stream
    name that is not a plain file name)."""
    return private_path.parent / WITNESS_DIR / f"{stream}.json" if _STREAM_NAME.match(stream) else None


def write_witness(path: Path, cp: Checkpoint) -> None:
    """Replace the witness with `cp` (signed) unless it already holds a later checkpoint."""
    if cp.signature is None or cp.key_id is None:
        raise ValueError("only a signed checkpoint is a witness")
    old = read_witness(path)
    if old is not None and old.upto_seq >= cp.upto_seq:
        return
    doc = {
        "stream": cp.stream,
        "upto_seq": cp.upto_seq,
        "hash": cp.hash.hex(),
        "count": cp.count,
        "signature": cp.signature.hex(),
        "key_id": cp.key_id,
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_witness(path: Path) -> Checkpoint | None:
    """The checkpoint a witness file holds; None when there is none or it is unreadable (a
    verifier then checks the database's checkpoints alone)."""
    try:
        doc = json.loads(path.read_text())
        return Checkpoint(
            stream=str(doc["stream"]),
            upto_seq=int(doc["upto_seq"]),
            hash=bytes.fromhex(doc["hash"]),
            count=int(doc["count"]),
            signature=bytes.fromhex(doc["signature"]),
            key_id=str(doc["key_id"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
