"""Typed configuration: `ticktape.yaml` plus TICKTAPE_* environment overrides, decoded into frozen
msgspec structs. Unknown keys and bad values fail at start with the key path and what is allowed.

Environment overrides: TICKTAPE_NATS_URL, TICKTAPE_PG_DSN, TICKTAPE_HOME, TICKTAPE_VENUE_SIM and
TICKTAPE_LIVE are aliases for nats.url, postgres.dsn, home, venue_sim and live; any TICKTAPE_A__B__C=value sets
a.b.c (value parsed as YAML, so numbers and lists work). Secrets never live here: credentials are
read from the environment by the code that needs them."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import yaml

from ticktape import accounts as accts
from ticktape import registry
from ticktape.redact import redact_text

EXIT_CONFIG = 78  # EX_CONFIG: the supervisor does not restart a service that exits with it

ENV_ALIASES = {
    "TICKTAPE_NATS_URL": ("nats", "url"),
    "TICKTAPE_PG_DSN": ("postgres", "dsn"),
    "TICKTAPE_HOME": ("home",),
    "TICKTAPE_VENUE_SIM": ("venue_sim",),
    "TICKTAPE_LIVE": ("live",),  # set by `ticktape up --live` after its checks (ticktape.live)
}
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem, phrased as what to fix."""

    def __init__(self, message: str) -> None:
        # a message may quote a value (a DSN, a YAML line): never a secret in it
        super().__init__(f"config error: {redact_text(message)}")


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class NatsSettings(_Section, frozen=True, kw_only=True):
    url: str = "nats://127.0.0.1:4222"
    stream: str = "TICKTAPE"
    dlq_stream: str = "TICKTAPE_DLQ"
    trades_stream: str = "TICKTAPE_TRADES"
    trades_max_age_days: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    duplicate_window_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    max_age_days: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    # Poison messages (ticktape.bus.deadletter, ticktape.bus.consumer): an input whose processing
    # fails max_deliver times is dead-lettered and terminated, never redelivered for ever. Inputs
    # larger than max_message_bytes (0: the server's max_payload) are refused before decoding.
    # A dead letter inlines at most dlq_inline_bytes of the input; larger inputs are kept whole in
    # the JetStream object store dlq_payloads_bucket (at most dlq_payloads_max_bytes in all).
    max_deliver: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    max_message_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    dlq_inline_bytes: Annotated[int, msgspec.Meta(ge=0, le=256 * 1024)] = 64 * 1024
    dlq_payloads_bucket: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")] = "TICKTAPE_DLQ_PAYLOADS"
    dlq_payloads_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 1024**3
    # State snapshots (ticktape.snapshots): a core service snapshots its core's state every
    # snapshot_every_inputs inputs or snapshot_every_s seconds (0: never by that rule; both 0: no
    # snapshots, every start re-runs the core over its whole input) and at a clean stop, into its
    # object store bucket <snapshots_bucket>_<service> (at most snapshots_max_bytes), keeping the
    # newest snapshots_kept; at start it restores the latest and rebuilds only from there.
    snapshots_bucket: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$")] = "TICKTAPE_SNAPSHOTS"
    snapshot_every_inputs: Annotated[int, msgspec.Meta(ge=0)] = 20_000
    snapshot_every_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    snapshots_kept: Annotated[int, msgspec.Meta(ge=1, le=100)] = 4
    snapshots_max_bytes: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 256 * 1024**2
    # Storage limits (ticktape.bus.provision; README "Storage limits"): every stream is bounded in
    # bytes, so JetStream never fills the disk silently. max_bytes bounds the event log, which then
    # refuses new events (discard new: publishes fail loudly; nothing recorded is ever dropped);
    # trades_max_bytes and dlq_max_bytes bound streams that drop their oldest messages instead.
    # max_file_store: the embedded server's JetStream file store; 0 = the sum of the streams' limits
    # plus 1 GiB (it must be at least that sum, or the server refuses to create the streams).
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 10 * 1024**3
    trades_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 * 1024**3
    dlq_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1024**3
    max_file_store: Annotated[int, msgspec.Meta(ge=0)] = 0
    # JetStream's fsync policy for an embedded server: "always" (fsync every write before its ack,
    # the default: an acked fill survives a power cut) or an interval such as "100ms" or "2m"
    # (the nats-server default). Cost measured by bench/jetstream_sync.py; see the README.
    sync_interval: Annotated[str, msgspec.Meta(pattern=r"^(always|[1-9][0-9]*(ms|s|m|h))$")] = "always"
    # Bus credentials (ticktape.bus.creds): paths only, the passwords stay in the files.
    # creds: this process's credentials file (`ticktape up` sets it per service: TICKTAPE_NATS__CREDS).
    # creds_dir: one <role>.json per role, default <home>/creds (generated there for an embedded
    # server; for a server ticktape does not run, put the files the server's users need there).
    creds: str | None = None
    creds_dir: str | None = None


class PostgresSettings(_Section, frozen=True, kw_only=True):
    dsn: str | None = None


class TelemetrySettings(_Section, frozen=True, kw_only=True):
    log_level: str = "info"
    # OTLP/HTTP base URL (e.g. http://127.0.0.1:4318; spans go to <url>/v1/traces). Set, spans
    # are recorded and exported as service.name=ticktape-<service>; unset, OTEL_EXPORTER_OTLP_ENDPOINT
    # is used, and without either nothing is recorded (trace context is still propagated).
    # `ticktape up --otlp URL` sets it for every service it starts.
    otlp_endpoint: str | None = None
    # With an OTLP endpoint, also push each process's metrics to <url>/v1/metrics
    # (ticktape.telemetry_metrics); false for an endpoint that takes traces only (Jaeger).
    otlp_metrics: bool = True
    # Prometheus text on metrics_host:metrics_port; port 0: off. Under `ticktape up` a base port: up
    # serves its own metrics there and service i of the registry base + 1 + i
    # (ticktape.metrics.service_ports); a service run on its own serves on exactly this port. A port
    # that cannot be bound exits 78. metrics_host: the address bound, loopback unless a scraper
    # outside the host or container must reach it (0.0.0.0 in docker-compose.yml).
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    metrics_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ValueError(f"log_level must be one of debug, info, warning, error (got {self.log_level!r})")
        if not _is_host(self.metrics_host):
            raise ValueError(
                "metrics_host must be an IP address or a host name, e.g. 127.0.0.1 or 0.0.0.0 "
                f"(got {self.metrics_host!r})"
            )


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*", host) is not None
    return True


class SupervisorSettings(_Section, frozen=True, kw_only=True):
    """How `ticktape up` stops (ticktape.supervisor): a service gets service_grace_s between
    SIGTERM and SIGKILL; the whole stop (drains, session record, embedded servers) ends within
    stop_timeout_s, after which every child still running is killed. shutdown_timeout_s bounds
    applying the accounts' on_shutdown policies (ticktape.shutdown): publishing them and waiting
    for the cores to carry them out."""

    service_grace_s: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    stop_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 90.0
    shutdown_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 20.0


class IpBudgetShares(_Section, frozen=True, kw_only=True):
    """Who may use how much of one venue's per-IP limits (connections, subscriptions, messages a
    minute, connection attempts, REST request weight a minute), as shares of each limit. Every
    process on the host talks to the venue from the same IP, and nothing coordinates them at run
    time, so the split is static: each role keeps to its share (market data and the symbol
    registry enforce theirs; execution's is reserved). The shares must add up to at most 1."""

    market_data: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    symbol_registry: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    execution: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1

    def __post_init__(self) -> None:
        total = self.market_data + self.symbol_registry + self.execution
        if total > 1 + 1e-9:
            raise ValueError(
                f"market_data + symbol_registry + execution must be <= 1 (got {total:g}): "
                "they share one IP's limits at the venue"
            )


class IpLimitOverrides(_Section, frozen=True, kw_only=True):
    """Per-IP limits that replace the venue adapter's documented ones (None: the documented
    number, see libs/exchanges): for an account the venue gives other limits, or a test."""

    connections_per_ip: Annotated[int, msgspec.Meta(ge=1)] | None = None
    subscriptions_per_ip: Annotated[int, msgspec.Meta(ge=1)] | None = None
    messages_per_minute_per_ip: Annotated[int, msgspec.Meta(ge=1)] | None = None
    connection_attempts: Annotated[int, msgspec.Meta(ge=1)] | None = None
    rest_weight_per_minute_per_ip: Annotated[int, msgspec.Meta(ge=1)] | None = None


class VenueSettings(_Section, frozen=True, kw_only=True):
    """One venue's per-IP budget, read by every service that talks to it (exchanges.budget):
    ip_budget splits the limits between the services; a universe that would exceed market
    data's share is trimmed (the lowest-ranked symbols dropped, with a UniverseTrimmed event)
    or, with on_exceed: refuse, stops the service with a config error."""

    ip_budget: IpBudgetShares = IpBudgetShares()
    on_exceed: Literal["trim", "refuse"] = "trim"
    limits: IpLimitOverrides = IpLimitOverrides()
    # where this venue's live accounts trade (an account's own `network` wins); unset, a live
    # account must set its own (ticktape.live.endpoint)
    network: accts.Network | None = None


class VenuesSettings(_Section, frozen=True, kw_only=True):
    """The per-IP budget of each venue (section `venues`), one declaration all services read."""

    binance_spot: VenueSettings = VenueSettings()
    binance_usdm: VenueSettings = VenueSettings()
    hyperliquid: VenueSettings = VenueSettings()

    def of(self, venue: str) -> VenueSettings:
        settings = getattr(self, venue, None)
        if not isinstance(settings, VenueSettings):
            raise ValueError(f"unknown venue {venue!r}")
        return settings


class CommonSettings(_Section, frozen=True, kw_only=True):
    """Settings every process shares."""

    home: str = ".ticktape"
    venue_sim: str | None = None
    nats: NatsSettings = NatsSettings()
    postgres: PostgresSettings = PostgresSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    venues: VenuesSettings = VenuesSettings()  # per-IP budgets at each venue (exchanges.budget)
    # the trading accounts, read by risk and execution alike (ticktape.accounts); legacy
    # risk.accounts / execution.accounts are moved here by accounts.upcast
    accounts: tuple[accts.Account, ...] = accts.DEFAULT_ACCOUNTS
    # true only under `ticktape up --live`, which sets it (TICKTAPE_LIVE) for the services it
    # starts after its checks: risk and execution load live accounts only then (load_accounts)
    live: bool = False


COMMON_KEYS = tuple(
    msgspec.structs.fields(CommonSettings)[i].name for i in range(len(msgspec.structs.fields(CommonSettings)))
)


def service_sections() -> tuple[str, ...]:
    """One configuration section per registered service (ticktape.registry), in start order."""
    return registry.names()


def config_path(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    explicit = env.get("TICKTAPE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise ConfigError(f"TICKTAPE_CONFIG points at {path}, which does not exist")
        return path
    default = Path("ticktape.yaml")
    return default if default.exists() else None


def load_raw(path: Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The merged document: the YAML file (if any) with environment overrides applied."""
    env = os.environ if env is None else env
    path = path if path is not None else config_path(env)
    doc: dict[str, Any] = {}
    if path is not None:
        loaded = _read_yaml(Path(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must be a mapping of sections, got {type(loaded).__name__}")
        doc = loaded
    for name, value in sorted(env.items()):
        keys = ENV_ALIASES.get(name)
        if keys is None and name.startswith("TICKTAPE_") and "__" in name:
            keys = tuple(part.lower() for part in name[len("TICKTAPE_") :].split("__"))
        if keys:
            _set_path(doc, keys, _parse_env_value(name, value))
    allowed = set(COMMON_KEYS) | set(service_sections())
    for key in doc:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown section; allowed: {', '.join(sorted(allowed))}")
    return doc


def _read_yaml(path: Path) -> Any:
    """The YAML document in the file at path; ConfigError (one line naming the path and what is
    wrong) when it is a directory (what Docker mounts for a missing file), unreadable, not UTF-8
    or not YAML. A YAML error names the line and column, never the file's text."""
    if path.is_dir():
        raise ConfigError(
            f"{path} is a directory, not a YAML file (a container engine creates one when the file "
            "it should mount is missing): create the file or point TICKTAPE_CONFIG at one"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path} is not a usable YAML file: it nests too deeply") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where, on one line, without quoting the document (PyYAML's message
    shows the offending line, which may hold a secret)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{exc.problem or exc.context or type(exc).__name__}{where}"
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _parse_env_value(name: str, value: str) -> Any:
    try:
        return yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"environment variable {name} is not a valid value: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"environment variable {name} is not a valid value: it nests too deeply") from None


def _set_path(doc: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def load_section(section: str, typ: type[T], raw: Mapping[str, Any] | None = None) -> T:
    """Decode one service section (missing section = all defaults), naming the key on error."""
    raw = upcast(load_raw() if raw is None else raw)
    data = raw.get(section) or {}
    return _convert(data, typ, section)


def load_common(raw: Mapping[str, Any] | None = None) -> CommonSettings:
    raw = upcast(load_raw() if raw is None else raw)
    data = {k: v for k, v in raw.items() if k in COMMON_KEYS}
    common = _convert(data, CommonSettings, "")
    _check_accounts(common.accounts)
    return common


def load_recorded_section(section: str, typ: type[T], raw: Mapping[str, Any]) -> T | None:
    """For replay: a recorded config that predates the top-level `accounts:` section (it has
    `risk.accounts` or `execution.accounts` and no `accounts`) decoded as that run decoded it,
    this service's own accounts list (or its default) included, so the recording replays as it
    ran, even if its two lists disagreed (what the one section now makes impossible for new
    runs); None for any other document."""
    legacy = any(isinstance(raw.get(s), Mapping) and "accounts" in raw[s] for s in ("risk", "execution"))
    if "accounts" in raw or not legacy:
        return None
    return _convert(raw.get(section) or {}, typ, section)


def upcast(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The document in today's shape: legacy risk.accounts / execution.accounts moved to the
    top-level accounts section (ticktape.accounts.upcast), so a recorded config still loads."""
    try:
        return accts.upcast(raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _legacy_defaults() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(section, {key: value before the key existed}, {key: today's default}) of every service
    whose config struct declares LEGACY_DEFAULTS: keys whose default changed behaviour."""
    found = []
    for info in registry.services():
        typ = registry.config_type(info)
        legacy: dict[str, Any] = dict(getattr(typ, "LEGACY_DEFAULTS", None) or {})
        if not legacy:
            continue
        fields = {f.name: f.default for f in msgspec.structs.fields(typ)}
        today = {k: fields[k] for k in legacy if fields.get(k, msgspec.NODEFAULT) is not msgspec.NODEFAULT}
        if today.keys() != legacy.keys():
            raise registry.RegistryError(
                f"{info.config}: LEGACY_DEFAULTS must name fields with a default (got {list(legacy)})"
            )
        found.append((info.name, legacy, today))
    return found


def _with_section_keys(doc: Mapping[str, Any], section: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """doc with the keys of `values` its section lacks set (a section that is not a mapping is
    left for the decoder to name)."""
    out = dict(doc)
    current = out.get(section)
    if current is None:
        current = {}
    if isinstance(current, Mapping):
        missing = {k: v for k, v in values.items() if k not in current}
        if missing:
            out[section] = {**current, **missing}
    return out


def state_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The document as a session records it: every key a service's config lists in
    LEGACY_DEFAULTS stated explicitly (today's default unless the document sets it), so the
    recording says how it ran and recorded_as_run can tell it from one made before the key."""
    doc = dict(raw)
    for section, _, today in _legacy_defaults():
        doc = _with_section_keys(doc, section, today)
    return doc


def recorded_as_run(doc: Mapping[str, Any]) -> dict[str, Any]:
    """For replay: a recorded configuration as the code that recorded it read it. A key listed
    in a service's LEGACY_DEFAULTS that the recording lacks was made before the key existed, and
    gets the value that code behaved by (e.g. signal.trade_backfilled: true); recordings made
    since state every such key (state_defaults) and are returned unchanged."""
    out = dict(doc)
    for section, legacy, _ in _legacy_defaults():
        out = _with_section_keys(out, section, legacy)
    return _with_credential_names(out)


# What a replay reads for a live account's credential variable the recording lacks: the session
# record drops secret-named keys (ticktape.redact: api_key_env, api_secret_env), and a replay
# never reads a credential, but the account's check wants each name.
RECORDED_WITHOUT_NAME = "RECORDED_WITHOUT_CREDENTIAL_NAME"


def _with_credential_names(doc: dict[str, Any]) -> dict[str, Any]:
    items = doc.get("accounts")
    if not isinstance(items, list):
        return doc
    filled = []
    for item in items:
        needed = accts.LIVE_CREDENTIALS.get(item.get("venue", "")) if isinstance(item, Mapping) else None
        if isinstance(item, Mapping) and item.get("mode") == "live" and needed:
            item = {**{key: RECORDED_WITHOUT_NAME for key in needed}, **item}
        filled.append(item)
    return {**doc, "accounts": filled}


def load_accounts(raw: Mapping[str, Any] | None = None) -> tuple[accts.Account, ...]:
    """The accounts section alone (default: one paper account), validated: the one list risk and
    execution build their per-account state from (services/*/loading.py from_raw). A live account
    loads only when the document's `live` key is true (set by `ticktape up --live` after its
    checks) and execution declares a live path (live_execution_available); otherwise a
    ConfigError names it (accounts.live_problems). load_common, which the operator's commands
    use (status, stop, ...), does not refuse live accounts: the kill switch works on a live config."""
    raw = upcast(load_raw() if raw is None else raw)
    if "accounts" not in raw or raw["accounts"] is None:
        return accts.DEFAULT_ACCOUNTS
    found = _convert(raw["accounts"], tuple[accts.Account, ...], "accounts")
    _check_accounts(found)
    if any(a.mode == "live" for a in found):
        enabled = _convert(raw.get("live") or False, bool, "live")
        problems = accts.live_problems(found, enabled=enabled, available=enabled and live_execution_available())
        if problems:
            raise ConfigError("; ".join(problems))
    return found


# The class attribute by which execution's config type declares that it can trade live accounts
# (`LIVE_EXECUTION: ClassVar[bool] = True`); without it live accounts never load (load_accounts)
# and `ticktape up --live` stops after its checks (ticktape.live).
LIVE_EXECUTION = "LIVE_EXECUTION"


def live_execution_available() -> bool:
    """Whether this build's execution service declares a live path (LIVE_EXECUTION)."""
    try:
        typ = registry.config_type(registry.get("execution"))
    except (registry.RegistryError, ImportError, AttributeError):
        return False
    return getattr(typ, LIVE_EXECUTION, False) is True


def _check_accounts(found: tuple[accts.Account, ...]) -> None:
    problems = accts.problems(found, tuple(f.name for f in msgspec.structs.fields(VenuesSettings)))
    for i, a in enumerate(found):  # a credential must never be read as configuration (and recorded)
        for key in ("api_key_env", "api_secret_env", "wallet_key_env"):
            name = getattr(a, key)
            if name is not None and (name in ENV_ALIASES or (name.startswith("TICKTAPE_") and "__" in name)):
                problems.append(
                    f"accounts[{i}].{key} names {name}, which is read as a configuration override (and recorded "
                    "with the session's configuration); name a variable outside TICKTAPE_*__* and the TICKTAPE_ aliases"
                )
    if problems:
        raise ConfigError("; ".join(problems))


def convert_at(data: Any, typ: type[T], key_path: str) -> T:
    """Decode `data` found at `key_path` (e.g. signal.strategies[3].params) into typ, or a
    ConfigError naming the key under it, as for a section (for values whose type is known only
    once the section is read, such as a strategy's parameters)."""
    return _convert(data, typ, key_path)


def _convert(data: Any, typ: type[T], prefix: str) -> T:
    try:
        return msgspec.convert(data, typ, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), typ, prefix, data)) from None


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


def _explain(message: str, typ: type[Any], prefix: str, data: Any = None) -> str:
    m = _AT.match(message)
    msg, path = (m.group("msg"), m.group("path") or "") if m else (message, "")
    key_path = (prefix + path) if prefix else path.lstrip(".")
    unknown = _UNKNOWN.match(msg)
    if unknown:
        field = unknown.group("field")
        allowed = _allowed_keys(typ, path)
        where = f"{key_path}.{field}" if key_path else field
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"{where}: unknown key{hint}"
    got = _value_at(data, path)
    suffix = f" (got {got!r})" if got is not _MISSING and "got" not in msg else ""
    return f"{key_path or '(top level)'}: {msg}{suffix}"


_MISSING = object()


def _value_at(data: Any, path: str) -> Any:
    for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        try:
            data = data[key] if key else data[int(index)]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data if path else _MISSING


def _allowed_keys(typ: type[Any], path: str) -> list[str]:
    """Field names of the struct found at `path` ('.a.b[0].c') inside typ."""
    info: Any = msgspec.inspect.type_info(typ)
    for part in re.findall(r"\.(\w+)|\[\d+\]", path):
        info = _unwrap(info)
        if part and isinstance(info, msgspec.inspect.StructType):
            match = [f for f in info.fields if f.encode_name == part]
            if not match:
                return []
            info = match[0].type
        elif not part and isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)):
            info = info.item_type
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.StructType):
        return [f.encode_name for f in info.fields]
    return []


def _unwrap(info: Any) -> Any:
    while isinstance(info, (msgspec.inspect.UnionType, msgspec.inspect.Metadata)):
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        else:
            structs = [t for t in info.types if isinstance(t, msgspec.inspect.StructType)]
            info = structs[0] if structs else info.types[0]
            if not structs:
                break
    return info


def config_hash(*parts: msgspec.Struct) -> str:
    """A short, stable hash of the effective configuration, logged at start for attribution."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(msgspec.json.encode(part, order="sorted"))
    return digest.hexdigest()[:16]
