"""The report of a run: trades CSV, summary JSON, equity curve PNG and an HTML page with them.

Only the session's own part counts: trades are its fills, P&L is each account's equity at its
end minus at its start (the last update before it, else the initial equity), and max drawdown is
the largest fall from a running peak of the equity summed over accounts. Every value comes from
the events, none from the wall clock, so the same run gives the same files byte for byte."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ticktape.events import AccountUpdated, Event, OrderFilled, SignalGenerated
from ticktape.replay.records import Record, SessionMeta

TRADE_COLUMNS = (
    "seq",
    "time_utc",
    "account",
    "venue",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "order_id",
    "event_id",
)
HTML_TRADES = 200
_HTML_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
)
_HTML_TRADES_HEAD = (
    "<tr><th>seq</th><th>time (UTC)</th><th>account</th><th>symbol</th><th>side</th>"
    "<th>quantity</th><th>price</th><th>fee</th></tr>"
)


@dataclass
class _Account:
    start_equity: float | None = None
    end_equity: float | None = None
    realized_pnl: float = 0.0
    fees: float = 0.0
    trades: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)


class ReportBuilder:
    """observe() every record of the run (with its event) in order, then write()."""

    def __init__(self) -> None:
        self.accounts: dict[str, _Account] = {}
        self.trades: list[tuple[int, OrderFilled]] = []
        self.signals = 0
        self._combined: list[tuple[int, float]] = []
        self._last_equity: dict[str, float] = {}

    def observe(self, rec: Record, event: Event) -> None:
        if isinstance(event, AccountUpdated):
            acct = self.accounts.setdefault(event.account, _Account())
            if not rec.in_session:
                acct.start_equity = event.equity
                return
            if acct.start_equity is None:
                acct.start_equity = event.initial_equity
            acct.end_equity, acct.realized_pnl, acct.fees = event.equity, event.realized_pnl, event.fees_paid
            acct.curve.append((event.ts_event, event.equity))
            self._last_equity[event.account] = event.equity
            self._combined.append((event.ts_event, sum(self._last_equity.values())))
        elif rec.in_session and isinstance(event, OrderFilled):
            self.trades.append((rec.seq, event))
            self.accounts.setdefault(event.account, _Account()).trades += 1
        elif rec.in_session and isinstance(event, SignalGenerated):
            self.signals += 1

    def summary(self, session: SessionMeta) -> dict[str, Any]:
        accounts = {}
        for name, a in sorted(self.accounts.items()):
            start = a.start_equity if a.start_equity is not None else 0.0
            end = a.end_equity if a.end_equity is not None else start
            dd, dd_pct = max_drawdown([start] + [e for _, e in a.curve])
            accounts[name] = {
                "trades": a.trades,
                "start_equity": start,
                "end_equity": end,
                "pnl": end - start,
                "fees": a.fees,
                "max_drawdown": dd,
                "max_drawdown_pct": dd_pct,
            }
        start_total = sum(a["start_equity"] for a in accounts.values())
        dd, dd_pct = max_drawdown([start_total] + [e for _, e in self._combined])
        return {
            "session_id": session.session_id,
            "derived_from": session.derived_from,
            "config_hash": session.config_hash,
            "code_version": session.code_version,
            "signals": self.signals,
            "trade_count": len(self.trades),
            "pnl": sum(a["pnl"] for a in accounts.values()),
            "max_drawdown": dd,
            "max_drawdown_pct": dd_pct,
            "accounts": accounts,
        }

    def write(self, out_dir: Path, session: SessionMeta) -> dict[str, Any]:
        """trades.csv, summary.json, equity.png and index.html in out_dir; returns the summary."""
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = self.summary(session)
        (out_dir / "trades.csv").write_text(self._trades_csv(), newline="")
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        png = equity_png(self.accounts, session.session_id)
        (out_dir / "equity.png").write_bytes(png)
        (out_dir / "index.html").write_text(self._html(summary, png))
        return summary

    def _trades_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        for seq, f in self.trades:
            writer.writerow(
                (
                    seq,
                    _utc(f.ts_event),
                    f.account,
                    f.venue,
                    f.symbol,
                    f.side,
                    repr(f.quantity),
                    repr(f.price),
                    repr(f.fee),
                    f.order_id,
                    f.event_id,
                )
            )
        return buf.getvalue()

    def _html(self, summary: dict[str, Any], png: bytes) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in summary.items() if k != "accounts"
        )
        acct_rows = "".join(
            "<tr>" + f"<td>{esc(name)}</td>" + "".join(f"<td>{esc(_num(v))}</td>" for v in a.values()) + "</tr>"
            for name, a in summary["accounts"].items()
        )
        acct_head = "".join(f"<th>{esc(k)}</th>" for k in next(iter(summary["accounts"].values()), {}))
        trade_rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{esc(str(v))}</td>"
                for v in (
                    seq,
                    _utc(f.ts_event),
                    f.account,
                    f.symbol,
                    f.side,
                    _num(f.quantity),
                    _num(f.price),
                    _num(f.fee),
                )
            )
            + "</tr>"
            for seq, f in self.trades[:HTML_TRADES]
        )
        more = (
            f'<p>First {HTML_TRADES} of {len(self.trades)} trades; all are in <a href="trades.csv">trades.csv</a>.</p>'
            if len(self.trades) > HTML_TRADES
            else '<p>Also as <a href="trades.csv">trades.csv</a>.</p>'
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ticktape {esc(summary["session_id"])}</title>
<style>{_HTML_STYLE}</style>
</head><body>
<h1>Session {esc(summary["session_id"])}</h1>
<table>{rows}</table>
<h2>Accounts</h2>
<table><tr><th>account</th>{acct_head}</tr>{acct_rows}</table>
<h2>Equity</h2>
<img alt="equity curve" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Trades</h2>
<table>{_HTML_TRADES_HEAD}{trade_rows}</table>
{more}
</body></html>
"""


def max_drawdown(curve: list[float]) -> tuple[float, float]:
    """(largest fall from a running peak, that fall as a fraction of the peak)."""
    peak = dd = dd_pct = 0.0
    for i, value in enumerate(curve):
        peak = value if i == 0 else max(peak, value)
        if peak - value > dd:
            dd = peak - value
            dd_pct = dd / peak if peak > 0 else 0.0
    return dd, dd_pct


def equity_png(accounts: dict[str, _Account], title: str) -> bytes:
    """The equity curve of each account as PNG bytes (Agg renderer, fixed size, no timestamps)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    fig = Figure(figsize=(9, 4), dpi=100)
    ax = fig.add_subplot()
    drawn = False
    for name, a in sorted(accounts.items()):
        if a.curve:
            # matplotlib plots datetimes through its unit converters; its stubs admit only arrays
            times = [_dt(t) for t, _ in a.curve]
            ax.plot(times, [e for _, e in a.curve], label=name, linewidth=1)  # type: ignore[arg-type]
            drawn = True
    if drawn:
        ax.legend(loc="best")
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no equity updates in this session", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Equity: {title}")
    ax.set_ylabel("equity")
    ax.grid(True, alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": "ticktape"})
    return buf.getvalue()


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _utc(ns: int) -> str:
    return _dt(ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _num(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)
