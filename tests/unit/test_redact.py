"""One redaction for every output: each supported form of secret is masked wherever it occurs,
what is not a secret is left alone, and redacting twice changes nothing."""

from __future__ import annotations

import json

import pytest
import structlog
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ticktape import log
from ticktape.redact import MARK, redact, redact_fields, redact_text
from ticktape.sessions import effective_config

S = "Zq7xW2kP9s"  # the planted secret

FORMS = {
    "DSN userinfo": (f"postgresql://tt:{S}@db:5432/tt", "postgresql://tt:***@db:5432/tt"),
    "DSN ?password=": (
        f"postgresql://tt@db/tt?password={S}&sslmode=require",
        "postgresql://tt@db/tt?password=***&sslmode=require",
    ),
    "DSN ?sslpassword=": (
        f"postgres://db/tt?sslmode=verify-full&sslpassword={S}",
        "postgres://db/tt?sslmode=verify-full&sslpassword=***",
    ),
    "conninfo password=": (f"host=db user=tt password={S} dbname=tt", "host=db user=tt password=*** dbname=tt"),
    "conninfo sslpassword='…'": (f"host=db sslpassword='{S} x\\' y' port=5", "host=db sslpassword='***' port=5"),
    "nats://TOKEN@host": (f"nats://{S}@nats:4222", "nats://***@nats:4222"),
    "nats://user:pass@host": (f"nats://alice:{S}@nats:4222", "nats://alice:***@nats:4222"),
    "a NATS server list": (f"nats://a:4222,tls://{S}@b:4222", "nats://a:4222,tls://***@b:4222"),
    "a password holding @": (f"postgresql://tt:{S}@x@db/tt", "postgresql://tt:***@db/tt"),
    "query token/api_key/signature": (
        f"https://h/x?token={S}&api_key={S}&apikey={S}&key={S}&signature={S}&access_token={S}&q=1",
        "https://h/x?token=***&api_key=***&apikey=***&key=***&signature=***&access_token=***&q=1",
    ),
    "environment assignment": (
        f"PGPASSWORD={S} TICKTAPE_MARKET_DATA__API_SECRET={S}",
        "PGPASSWORD=*** TICKTAPE_MARKET_DATA__API_SECRET=***",
    ),
    "a repr'd dict": (f"{{'api_key': '{S}', 'venue': 'binance'}}", "{'api_key': '***', 'venue': 'binance'}"),
    "JSON text": (f'{{"password":"{S}","url":"nats://{S}@h"}}', '{"password":"***","url":"nats://***@h"}'),
    "a YAML line": (f"  passphrase: {S}\n", "  passphrase: ***\n"),
    "a Bearer header": (f"Authorization: Bearer {S}", "Authorization: Bearer ***"),
    "an NKey seed": ("SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY", MARK),
    "an exception repr": (f"NoServersError('nats://{S}@127.0.0.1:1')", "NoServersError('nats://***@127.0.0.1:1')"),
}


@pytest.mark.parametrize("form", FORMS)
def test_each_form_of_secret_is_masked_in_place(form):
    text, expected = FORMS[form]
    assert redact_text(text) == expected
    assert redact_text(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "service starting",
        "postgresql://postgres@127.0.0.1:5432/postgres",  # a role name, not a secret
        "nats://127.0.0.1:4222",
        "http://127.0.0.1:8900/binance_spot?symbol=BTCUSDT&interval=1m",
        "risk.accounts[0].max_gross_exposure: Expected `float` > 0.0 (got -5)",
        "signal: ema_cross; passed=3 seeded: true; tokens",
        "Basic configuration failed",
        "md.bar.binance_usdm.BTCUSDT.1m",
    ],
)
def test_what_is_not_a_secret_is_left_alone(text):
    assert redact_text(text) == text


def test_a_config_document_drops_secret_keys_and_masks_secrets_in_values():
    raw = {
        "market_data": {"api_key": S, "api_secret": S, "passphrase": S, "venue": "binance_usdm"},
        "nats": {"url": f"nats://{S}@h:4222", "creds": "/home/x/creds/admin.json", "stream": "TICKTAPE"},
        "postgres": {"dsn": f"postgresql://tt@db/tt?sslpassword={S}"},
        "signal": {"strategies": [{"kind": "ema_cross", "fast": 9, "slow": 21}]},
    }
    doc = redact(raw)
    assert S not in json.dumps(doc)
    assert doc["market_data"] == {"venue": "binance_usdm"}
    assert doc["nats"] == {"url": "nats://***@h:4222", "stream": "TICKTAPE"}
    assert doc["signal"] == raw["signal"]
    text, digest = effective_config(raw)
    assert S not in text and effective_config(json.loads(text)) == (text, digest)  # recording twice: same


def test_log_fields_keep_their_keys_with_the_secret_masked():
    assert redact_fields({"token": S, "nested": [{"password": S, "n": 1}], "url": f"nats://{S}@h"}) == {
        "token": MARK,
        "nested": [{"password": MARK, "n": 1}],
        "url": "nats://***@h",
    }


def test_the_log_pipeline_masks_every_field_and_the_traceback(capsys):
    try:
        log.configure("redact-test")
        try:
            raise ConnectionError(f"cannot reach postgresql://tt:{S}@db/tt")
        except ConnectionError as exc:
            log.get().error(
                f"connect to nats://{S}@h failed",
                dsn=f"host=db password={S}",
                api_key=S,
                error=exc,
                exc_info=True,
            )
        err = capsys.readouterr().err
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    assert err.count("\n") == 1 and '"level": "error"' in err
    assert S not in err


safe_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
secrets = st.text("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.~", min_size=10, max_size=24)
templates = st.sampled_from(
    [
        "postgresql://tt:{s}@db:5432/tt",
        "postgresql://db/tt?password={s}",
        "postgresql://db/tt?a=b&sslpassword={s}#f",
        "host=db password={s} dbname=tt",
        "sslpassword='{s}'",
        "nats://{s}@nats:4222",
        "nats://u:{s}@nats:4222",
        "wss://{s}@h/x?token={s}",
        "NATS_TOKEN={s}",
        '"api_secret": "{s}"',
    ]
)


@settings(max_examples=300, deadline=None)
@given(before=safe_text, template=templates, secret=secrets, after=safe_text)
def test_a_planted_secret_never_survives_whatever_surrounds_it(before, template, secret, after):
    assume(secret not in before and secret not in after)
    text = f"{before} {template.format(s=secret)} {after}"
    out = redact_text(text)
    assert secret not in out
    assert redact_text(out) == out


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_redaction_is_idempotent_on_any_text(text):
    once = redact_text(text)
    assert redact_text(once) == once
