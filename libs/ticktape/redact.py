"""The one redaction of secrets, for everything that leaves a process: session records, session
files, logs, CLI output and error messages.

`redact_text` masks, wherever they occur in a string, with MARK:
- URL userinfo of any scheme: `postgresql://user:***@host`, `nats://user:***@host`; a userinfo
  without a password is a token (`nats://***@host`) except for postgres/postgresql, where it
  is a role name and stays;
- secret parameters in URL query strings (`?password=***&sslpassword=***`, `token`, `key`, ...);
- `name=value` and `name: value` pairs whose name contains a secret word: libpq conninfo
  (`password=*** sslpassword=***`), environment assignments (`PGPASSWORD=***`), quoted keys in
  reprs and JSON (`'api_key': '***'`);
- `Bearer`/`Basic` credentials, NATS NKey seeds and JWTs (what a NATS creds file holds).
`redact` applies it to every string of a document and drops secret-named keys (the session
record's behaviour: the configuration hash never depends on a secret); `redact_fields` masks
them instead (for log events, whose keys say what happened). Redaction is idempotent."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MARK = "***"

# Keys of a document (config, log event) that hold a secret. Deliberately narrower than the
# parameter names below: a dropped config key leaves the configuration hash, so a decision
# setting must never match.
SECRET_KEY = re.compile(r"pass(?:word|wd|phrase)|secret|token|api_?key|credential|creds|private|nkey|jwt", re.I)

# Names of URL query parameters and name=value pairs that hold a secret: any name containing
# one of _SECRET_WORDS, or exactly one of the short names (which are too common inside words).
_SECRET_WORDS = (
    r"password|passwd|passphrase|secret|token|api_?key|access_?key|private_?key|signature"
    r"|credential|creds|nkey|jwt"
)
_PARAM_NAME = re.compile(rf"{_SECRET_WORDS}|^(?:pass|pwd|key|sig|auth|seed)$", re.I)
_PAIR_NAME = re.compile(rf"{_SECRET_WORDS}|^(?:pass|pwd)$", re.I)
_KEEP_LONE_USER = frozenset(("postgres", "postgresql"))

# Possessive quantifiers and lookbehinds that start a name only where a name starts keep the
# scan linear in the length of the text.
# A URL token ends at whitespace, a double quote, <, >, ` or a comma that starts the next URL
# (NATS takes comma-separated server lists).
_SCHEME = r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://"
_URL = rf"(?P<url>{_SCHEME}[^\s\"<>`]+?(?=$|[\s\"<>`]|,{_SCHEME}))"
# name (optionally quoted), then = or :; the value (quoted, or up to the next whitespace) is read
# with _VALUE only after a secret name, so a value that is not masked is still scanned
_PAIR = r"(?P<q>[\"']?)(?<![\w.-])(?P<name>[\w.-]++)(?P=q)(?P<sep>\s*=\s*|\s*:\s+|\s*:(?=[\"']))(?=\S)"
_VALUE = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\S+")
_AUTH = r"(?-i:(?P<auth>Bearer|Basic))\s+(?=[A-Za-z0-9._~+/=-]*[0-9=])[A-Za-z0-9._~+/=-]{8,}"
_NATS_SECRET = r"(?-i:\bS[ACNOUX][A-Z2-7]{56}\b|(?<![\w-])eyJ[\w-]{8,}+\.[\w-]{8,}+\.[\w-]*+)"
_PATTERN = re.compile("|".join((_URL, _PAIR, _AUTH, _NATS_SECRET)), re.I)

# Substrings (of the lowercased text) without which no secret is found: most strings (log
# messages) have none, and `in` is far cheaper than the regex.
_TRIGGERS = (
    "://", "pass", "pwd", "secret", "token", "apikey", "api_key", "access_key", "accesskey", "private_key",
    "privatekey", "signature", "credential", "creds", "nkey", "jwt", "bearer", "basic", "eyj",
)  # fmt: skip
_SEED = re.compile(r"S[ACNOUX][A-Z2-7]{56}")

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>.*)@(?=[^@]*$)")
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&#;]+)=(?P<value>[^&#;]*)")


def redact_text(text: str) -> str:
    """text with every secret it carries replaced by MARK (see the module docstring)."""
    low = text.lower()
    if not any(trigger in low for trigger in _TRIGGERS) and _SEED.search(text) is None:
        return text
    out: list[str] = []
    pos = 0
    for m in _PATTERN.finditer(text):
        if m.start() < pos:  # inside a value masked already
            continue
        if m.group("url") is not None:
            out += (text[pos : m.start()], _mask_url(m.group("url")))
            pos = m.end()
        elif m.group("name") is not None:
            if _PAIR_NAME.search(m.group("name")) is None:
                continue
            found = _VALUE.match(text, m.end())
            value = found.group(0) if found else ""
            if value.strip("'\"") == MARK:
                continue
            quote = value[0] if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0] else ""
            out += (text[pos : m.end()], quote, MARK, quote)
            pos = m.end() + len(value)
        elif m.group("auth") is not None:
            out += (text[pos : m.start()], m.group("auth"), " ", MARK)
            pos = m.end()
        else:
            out += (text[pos : m.start()], MARK)
            pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _mask_url(url: str) -> str:
    m = _USERINFO.match(url)
    if m is not None:
        user, colon, _ = m.group("userinfo").partition(":")
        if colon:
            userinfo = f"{user}:{MARK}"
        elif m.group("scheme").lower() in _KEEP_LONE_USER or user in ("", MARK):
            userinfo = user
        else:
            userinfo = MARK
        url = f"{m.group('scheme')}://{userinfo}@{url[m.end() :]}"
    if "=" in url:
        url = _QUERY_PARAM.sub(_mask_param, url)
    return url


def _mask_param(m: re.Match[str]) -> str:
    if _PARAM_NAME.search(m.group("name")) is None:
        return m.group(0)
    return f"{m.group('lead')}{m.group('name')}={MARK}"


def redact(doc: Any) -> Any:
    """The document without secrets: secret-named keys dropped, secrets in strings masked."""
    if isinstance(doc, Mapping):
        return {k: redact(v) for k, v in doc.items() if not SECRET_KEY.search(str(k))}
    if isinstance(doc, list | tuple):
        return [redact(v) for v in doc]
    if isinstance(doc, str):
        return redact_text(doc)
    return doc


def redact_fields(doc: Any) -> Any:
    """Like `redact`, but a secret-named key keeps its place with MARK as its value."""
    if isinstance(doc, Mapping):
        return {k: MARK if SECRET_KEY.search(str(k)) else redact_fields(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [redact_fields(v) for v in doc]
    if isinstance(doc, str):
        return redact_text(doc)
    return doc
