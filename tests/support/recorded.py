"""Real recorded 1m bars from ../shared/data, converted to the simulator's Binance CSV layout."""

from __future__ import annotations

from pathlib import Path

from ticktape.testing.data import shared_data
from venuesim.convert import convert_path

OCTOBOT_BTC = "AbstractExchangeHistoryCollector_1581774962.1269426.data"
OCTOBOT_ETH = "AbstractExchangeHistoryCollector_1581776676.5721796.data"


def convert_octobot(out: Path, *names: str) -> Path:
    """OctoBot's Binance 1m captures (all of them, or the named files) as CSVs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if names:
        for name in names:
            convert_path(shared_data("octobot", name), out)
    else:
        convert_path(shared_data("octobot"), out)
    return out
