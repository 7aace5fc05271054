"""The HTTP layer of the API (aiohttp): routes from services.api.routes, each request's query and
body validated by their Structs, answers from services.api.answers, and every error as an RFC 9457
problem+json document.

Who may call what: reads are open to loopback clients (api.reads = loopback, the default) and
need the bearer token from any other address (or always, api.reads = token); the control
endpoints always need it, and are refused (403) when no token is configured. Tokens are compared
in constant time and never logged."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from aiohttp import web

from services.api import answers
from services.api import queries as q
from services.api import strategies as st
from services.api import views as v
from services.api.config import ApiConfig
from services.api.health import Probe, score
from services.api.openapi import PROBLEM_JSON, document
from services.api.readmodel import ReadModel
from services.api.routes import ROUTES, Route
from ticktape import strategies_table as table

PROBLEM_BASE = "https://ticktape.dev/problems/"
MAX_BODY = 16 * 1024


class Backend(Protocol):
    """What the handlers need from the service shell."""

    model: ReadModel
    config: ApiConfig
    token: str | None
    undecodable: int
    workers: tuple[v.Worker, ...]

    def now_ns(self) -> int: ...

    def followed(self) -> int: ...

    async def stream_last_seq(self) -> int: ...

    def probe(self) -> Probe: ...

    async def control(self, command: str, request: v.ControlRequest | v.StopRequest) -> v.ControlAccepted: ...

    async def strategy_change(
        self, action: str, strategy_id: str, request: st.StrategyRequest | None
    ) -> st.StrategyAccepted: ...


class ProblemError(Exception):
    def __init__(self, status: int, kind: str, title: str, detail: str, errors: tuple[v.ParamError, ...] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.errors = errors


def problem_response(request: web.Request, exc: ProblemError, allow: str | None = None) -> web.Response:
    body = v.Problem(
        type=PROBLEM_BASE + exc.kind,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        instance=request.path,
        errors=exc.errors,
    )
    headers = {"WWW-Authenticate": 'Bearer realm="ticktape"'} if exc.status == 401 else {}
    if allow is not None:  # a 405 names the methods the resource has (RFC 9110)
        headers["Allow"] = allow
    return web.Response(status=exc.status, body=msgspec.json.encode(body), content_type=PROBLEM_JSON, headers=headers)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(obj), content_type="application/json")


def _bad(parameter: str, detail: str) -> ProblemError:
    return ProblemError(
        400,
        "invalid-parameter",
        "Invalid request parameter",
        f"{parameter}: {detail}",
        (v.ParamError(parameter=parameter, detail=detail),),
    )


def _validation(exc: msgspec.ValidationError, where: str) -> ProblemError:
    """A msgspec error as a problem naming the parameter (`... - at `$.limit``)."""
    text = str(exc)
    message, _, path = text.partition(" - at `$.")
    if path:
        return _bad(path.rstrip("`").split(".")[0].split("[")[0], message)
    if text.startswith("Object contains unknown field `"):
        name = text.split("`")[1]
        return _bad(name, f"unknown {where}")
    return ProblemError(400, "invalid-body" if where == "field" else "invalid-parameter", "Invalid request", text)


def parse_query(request: web.Request, query_type: type[Any]) -> Any:
    for key in request.query:
        if len(request.query.getall(key)) > 1:
            raise _bad(key, "given more than once")
    try:
        parsed = msgspec.convert(dict(request.query), query_type, strict=False)
    except msgspec.ValidationError as exc:
        raise _validation(exc, "parameter") from None
    for key in request.query:  # `?limit=null` converts to None: a given parameter must have a value
        if getattr(parsed, key, None) is None:
            raise _bad(key, "given without a value (omit it instead)")
    return parsed


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def _check_token(request: web.Request, token: str | None) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token is None:
        raise ProblemError(
            403, "control-disabled", "No token configured", "no bearer token is configured (api.token_env) on this API"
        )
    if scheme.lower() != "bearer" or not given:
        raise ProblemError(401, "unauthorized", "Unauthorized", "this endpoint needs `Authorization: Bearer <token>`")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ProblemError(401, "unauthorized", "Unauthorized", "the bearer token is not valid")


def _authorize(request: web.Request, route: Route, backend: Backend) -> None:
    if route.control:
        _check_token(request, backend.token)
    elif backend.config.reads == "token" or not _loopback(request):
        if backend.token is None:
            raise ProblemError(
                403,
                "reads-need-token",
                "Forbidden",
                "reads from this address need a bearer token, and none is configured (api.token_env)",
            )
        _check_token(request, backend.token)


async def _read_body(request: web.Request, body_type: type[Any]) -> Any:
    if request.content_length and request.content_length > MAX_BODY:
        raise ProblemError(413, "too-large", "Request body too large", f"at most {MAX_BODY} bytes")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ProblemError(413, "too-large", "Request body too large", f"at most {MAX_BODY} bytes")
    if not raw.strip():
        return body_type()
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        raise _validation(exc, "field") from None
    except msgspec.DecodeError as exc:
        raise ProblemError(400, "invalid-body", "Invalid request body", f"the body is not JSON: {exc}") from None


Handler = Callable[[web.Request, Any, Backend], Awaitable[web.Response]]


async def _health(request: web.Request, _: Any, b: Backend) -> web.Response:
    health = score(b.model, b.probe(), b.config.health)
    return _json(health, 200 if health.healthy else 503)


async def _symbols(request: web.Request, query: q.SymbolsQuery, b: Backend) -> web.Response:
    try:
        return _json(answers.symbols(b.model, query))
    except q.BadParameter as exc:
        raise _bad(exc.parameter, exc.detail) from None


async def _signals(request: web.Request, query: q.SignalsQuery, b: Backend) -> web.Response:
    symbol = request.match_info["symbol"]
    if not symbol or len(symbol) > 64:
        raise _bad("symbol", "1 to 64 characters")
    found = answers.signals(b.model, symbol, query)
    if found is None:
        raise ProblemError(
            404, "unknown-symbol", "Unknown symbol", f"{symbol!r} is in no universe and has no signal in the event log"
        )
    return _json(found)


async def _positions(request: web.Request, query: q.PositionsQuery, b: Backend) -> web.Response:
    return _json(answers.positions(b.model, query))


async def _accounts(request: web.Request, query: q.AccountsQuery, b: Backend) -> web.Response:
    return _json(answers.accounts(b.model, query))


async def _orders(request: web.Request, query: q.OrdersQuery, b: Backend) -> web.Response:
    return _json(answers.orders(b.model, query, b.config.page_max))


async def _fills(request: web.Request, query: q.FillsQuery, b: Backend) -> web.Response:
    return _json(answers.fills(b.model, query, b.config.page_max))


async def _performance(request: web.Request, query: q.PerformanceQuery, b: Backend) -> web.Response:
    return _json(answers.performance(b.model, query, b.config.performance_window_s))


async def _websocket(request: web.Request, _: Any, b: Backend) -> web.Response:
    return _json(answers.websocket_status(b.model, b.now_ns(), b.workers))


async def _scheduler(request: web.Request, _: Any, b: Backend) -> web.Response:
    return _json(answers.scheduler_status(b.model, b.workers, answers.configured_strategies(b.model.session_config)))


async def _sessions(request: web.Request, _: Any, b: Backend) -> web.Response:
    return _json(answers.sessions(b.model))


async def _metrics(request: web.Request, _: Any, b: Backend) -> web.Response:
    m = b.model
    last = await b.stream_last_seq()
    followed = b.followed()
    return _json(
        v.MetricsSummary(
            events=dict(sorted(m.counts.items())),
            applied_seq=followed,
            stream_last_seq=last,
            behind=max(0, last - followed),
            undecodable=b.undecodable,
            orders=len(m.orders),
            fills=len(m.fills),
            signals=m.signal_count,
            bars={venue: feed.bars for venue, feed in sorted(m.bar_feeds.items())},
            dead_letters=dict(sorted(m.dead_letters.items())),
            health_score=score(m, b.probe(), b.config.health).score,
        )
    )


def _control(command: str) -> Handler:
    body_type = v.StopRequest if command == "stop" else v.ControlRequest

    async def handle(request: web.Request, _: Any, b: Backend) -> web.Response:
        body = await _read_body(request, body_type)
        try:
            accepted = await b.control(command, body)
        except Exception as exc:  # noqa: BLE001 - the bus refused or timed out: say so, change nothing
            raise ProblemError(
                503,
                "bus-unavailable",
                "Command not published",
                f"the event log did not accept it: {type(exc).__name__}",
            ) from None
        return _json(accepted, 202)

    return handle


async def _strategies(request: web.Request, _: Any, b: Backend) -> web.Response:
    return _json(st.Strategies(strategies=list(b.model.managed.values())))


def _strategy_change(action: str) -> Handler:
    async def handle(request: web.Request, _: Any, b: Backend) -> web.Response:
        body: st.StrategyRequest | None = None
        if action == "add":
            raw = await request.read()
            if not raw.strip():
                raise ProblemError(400, "invalid-body", "Invalid request body", "the strategy to add is required")
            body = await _read_body(request, st.StrategyRequest)
            strategy_id = body.id
        else:
            strategy_id = request.match_info["id"]
        try:
            accepted = await b.strategy_change(action, strategy_id, body)
        except st.NoDatabase as exc:
            raise ProblemError(403, "strategies-disabled", "Strategy changes disabled", str(exc)) from None
        except table.UnknownStrategy as exc:
            raise ProblemError(404, "unknown-strategy", "Unknown strategy", f"{strategy_id}: {exc}") from None
        except table.StrategyConflict as exc:
            raise ProblemError(409, "conflict", "Change not allowed", str(exc)) from None
        except table.StrategyError as exc:
            raise ProblemError(400, "invalid-strategy", "Invalid strategy", str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - PostgreSQL or the bus refused or timed out: nothing changed
            raise ProblemError(
                503,
                "unavailable",
                "Change not made",
                f"PostgreSQL or the event log did not accept it ({type(exc).__name__}); nothing changed",
            ) from None
        return _json(accepted, 202)

    return handle


HANDLERS: dict[str, Handler] = {
    "health": _health,
    "symbols": _symbols,
    "signals": _signals,
    "positions": _positions,
    "accounts": _accounts,
    "orders": _orders,
    "fills": _fills,
    "performance": _performance,
    "websocket_status": _websocket,
    "scheduler_status": _scheduler,
    "sessions": _sessions,
    "metrics": _metrics,
    "control_stop": _control("stop"),
    "control_resume": _control("resume"),
    "strategies": _strategies,
    "strategy_add": _strategy_change("add"),
    "strategy_pause": _strategy_change("pause"),
    "strategy_resume": _strategy_change("resume"),
    "strategy_retire": _strategy_change("retire"),
}


def _endpoint(route: Route, backend: Backend) -> Callable[[web.Request], Awaitable[web.Response]]:
    handler = HANDLERS[route.name]

    async def endpoint(request: web.Request) -> web.Response:
        _authorize(request, route, backend)
        query = parse_query(request, route.query)
        return await handler(request, query, backend)

    return endpoint


@web.middleware
async def problems(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error as problem+json: ours, aiohttp's (404, 405, 413) and anything unexpected."""
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(exc.status, "http-error")
        detail = {
            404: f"no endpoint {request.path}; see /openapi.json",
            405: f"{request.method} is not allowed on {request.path}",
        }.get(exc.status, exc.text or exc.reason)
        allow = ", ".join(sorted(exc.allowed_methods)) if isinstance(exc, web.HTTPMethodNotAllowed) else None
        return problem_response(request, ProblemError(exc.status, kind, exc.reason, detail), allow)
    except Exception:  # noqa: BLE001 - a bug must not leak a traceback to the client
        request.app["log"].exception("request failed", path=request.path)
        return problem_response(
            request, ProblemError(500, "internal", "Internal error", "the request failed; see the API's log")
        )


def make_app(backend: Backend, log: Any) -> web.Application:
    app = web.Application(middlewares=[problems], client_max_size=MAX_BODY)
    app["log"] = log
    spec = msgspec.json.encode(document())

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=spec, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route, backend))
    return app
