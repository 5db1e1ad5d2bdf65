"""What every provider client returns, and how a fetch is asked for."""

from dataclasses import dataclass, field
from datetime import datetime

from quantdesk.market.bars import BarArrays
from quantdesk.market.intervals import Interval
from quantdesk.market.schemas import InstrumentCreate


@dataclass(frozen=True)
class StoredRange:
    """What is already stored for the series, so a client asks only for what is missing."""

    last: datetime | None


@dataclass(frozen=True)
class ProviderBars:
    bars: BarArrays
    interval: Interval
    instrument: InstrumentCreate  # how to create the instrument when it does not exist yet
    notes: list[str] = field(default_factory=list)
