"""Bodies of the backtest endpoints."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from quantdesk.core.types import MAX_ROW_ID
from quantdesk.market.intervals import Interval


class BacktestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    symbol: str = Field(min_length=1, max_length=32)
    interval: Interval | None = Field(default=None, description="The instrument's only stored interval when omitted.")
    start: str | None = Field(default=None, description="Inclusive ISO 8601 date or datetime.")
    end: str | None = Field(default=None, description="Inclusive; a date covers the whole day.")
    strategy: str = Field(
        default="sma_cross",
        max_length=40,
        description="A built-in (sma_cross, ema_cross, rsi_reversion, bollinger_breakout, buy_and_hold), an "
        "installed one, or one of your rule strategies: GET /api/v1/strategies lists them.",
    )
    strategy_version: int | None = Field(
        default=None, ge=1, le=MAX_ROW_ID, description="Your rule strategy's version (the latest when omitted)."
    )
    params: dict[str, float] = Field(default_factory=dict, examples=[{"fast": 10, "slow": 20}])
    cash: float = Field(default=10_000.0, gt=0, le=1e15)
    commission_pct: float = Field(default=0.0, ge=0, le=10, description="Percent of each fill's notional.")
    commission_fixed: float = Field(default=0.0, ge=0, le=1e9, description="Per fill.")
    slippage_bps: float = Field(default=0.0, ge=0, le=1_000)
    sizing: Literal["all_in", "fraction", "quantity"] = "all_in"
    sizing_value: float = Field(default=1.0, gt=0, le=1e12, description="Fraction of equity, or units.")
    fractional: bool = Field(default=False, description="Allow fractional units (whole units otherwise).")
    fill: Literal["next_open", "close"] = "next_open"
    stop_loss_pct: float | None = Field(default=None, gt=0, lt=100)
    take_profit_pct: float | None = Field(default=None, gt=0, le=10_000)
    allow_short: bool = Field(default=False, description="Exit signals also open shorts (long/short).")


class TradeRead(BaseModel):
    direction: Literal["long", "short"]
    entry_time: datetime
    entry_price: float
    exit_time: datetime | None
    exit_price: float | None
    size: float
    pnl: float
    return_pct: float
    bars_held: int
    exit_reason: Literal["signal", "stop_loss", "take_profit", "open"]


class EquityPoint(BaseModel):
    timestamp: datetime
    equity: float
    drawdown_pct: float


class BacktestBase(BaseModel):
    """What identifies a stored run."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    symbol: str
    interval: Interval
    strategy: str
    strategy_version: int | None = None
    params: dict[str, float]


SUMMARY_METRICS = ("return_pct", "max_drawdown_pct", "sharpe", "trades")


class BacktestSummary(BacktestBase):
    return_pct: float
    max_drawdown_pct: float
    sharpe: float | None
    trades: int


class BacktestRead(BacktestBase):
    data_fingerprint: dict[str, Any] | None = Field(
        default=None, description="The bars read: count, first and last time, and a hash of their values."
    )
    settings: dict[str, Any]
    metrics: dict[str, Any]
    trades: list[TradeRead]
    equity: list[EquityPoint] = Field(description="Downsampled to equity_points (last point always kept).")


class BacktestRerun(BacktestRead):
    rerun_of: int
    data_changed: bool = Field(description="Whether the bars differ from those the first run read.")
    data_changes: str | None = Field(default=None, description="What changed, in words.")


SweepMetric = Literal["sharpe", "return_pct", "max_drawdown_pct", "trades"]


class SweepCreate(BacktestCreate):
    params: dict[str, float] = Field(default_factory=dict, description="Unused: sweeps take a grid.")
    grid: dict[str, str | float | list[float]] = Field(
        description="Per parameter: start:stop:step (stop included), a list, or one value.",
        examples=[{"fast": "5:100:5", "slow": "20:400:20"}],
    )
    rank_by: SweepMetric = Field(default="sharpe", description="Higher is better for every metric offered.")


class ResearchJobRead(BaseModel):
    """What every research job shows (a sweep's and a walk-forward's are rows of one table)."""

    id: int
    created_at: datetime
    finished_at: datetime | None
    symbol: str
    interval: Interval
    strategy: str
    strategy_version: int | None = None
    data_fingerprint: dict[str, Any] | None = None
    grid: dict[str, Any]
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress_pct: float
    cost: int = Field(description="Combinations x bars: what the server's cap counts.")
    total: int
    completed: int
    error: str | None


class SweepRead(ResearchJobRead):
    rank_by: str
    best_params: dict[str, float] | None
    selection: dict[str, float] | None = Field(
        default=None,
        description="The deflated Sharpe ratio of the best Sharpe for the combinations tried (docs/metrics.md): "
        "deflated_sharpe, trials, best_sharpe, expected_max_sharpe.",
    )
    rows: list[dict[str, Any]] = Field(description="Combinations ranked best first, up to the `rows` asked for.")


class WalkForwardCreate(BacktestCreate):
    params: dict[str, float] = Field(default_factory=dict, description="Unused: each fold chooses its own.")
    grid: dict[str, str | float | list[float]] = Field(
        description="The in-sample sweep's grid: per parameter start:stop:step, a list, or one value.",
        examples=[{"fast": "5:50:5", "slow": "20:200:20"}],
    )
    train: int = Field(ge=2, le=10_000_000, description="Bars each in-sample sweep reads.")
    test: int = Field(ge=2, le=10_000_000, description="Bars each out-of-sample window trades.")
    step: int | None = Field(default=None, ge=1, description="Bars between folds (test when omitted).")
    mode: Literal["rolling", "anchored"] = Field(
        default="rolling", description="rolling: the train bars before each test; anchored: all bars from the first."
    )
    metric: SweepMetric = Field(default="sharpe", description="How the in-sample sweep picks its best row.")


class FoldRead(BaseModel):
    fold: int
    train_start: datetime
    train_end: datetime
    test_start: datetime
    test_end: datetime
    params: dict[str, float]
    in_sample: dict[str, float | None]
    out_of_sample: dict[str, float | None]


class WalkForwardRead(ResearchJobRead):
    plan: dict[str, Any] = Field(description="train, test, step, mode and metric.")
    total: int = Field(description="Folds.")
    folds: list[FoldRead]
    metrics: dict[str, Any] | None = Field(description="The stitched out-of-sample run's metrics.")
    efficiency: float | None = Field(description="Out-of-sample annualised return over in-sample's.")
    stability: float | None = Field(description="Share of folds that chose the most frequent parameters.")
    most_frequent_params: dict[str, float] | None
    equity: list[EquityPoint] = Field(description="The stitched out-of-sample equity, downsampled.")
    trades: list[TradeRead] = Field(default_factory=list)


class JobRead(BaseModel):
    """A research job of the caller's: a sweep or a walk-forward (portfolio runs will join them)."""

    id: int
    kind: Literal["sweep", "walkforward"]
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress_pct: float
    cost: int
    created_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    error: str | None
    url: str = Field(description="Where the job's results are read.")


class ParamRead(BaseModel):
    name: str
    default: float
    min: float
    max: float
    integer: bool


class StrategyRead(BaseModel):
    """A strategy a caller may run: built-in, installed (a Python package), or one of their rule strategies."""

    name: str
    kind: Literal["built-in", "rule", "python"]
    description: str
    params: list[ParamRead]
    version: int | None = Field(default=None, description="A rule strategy's latest (or asked-for) version.")
    versions: list[int] = Field(default_factory=list, description="Every stored version of a rule strategy.")
    owner_id: int | None = None
    created_at: datetime | None = None
    document: dict[str, Any] | None = Field(default=None, description="A rule strategy's document.")


class StrategyCheck(BaseModel):
    """A rule document that compiles: its parameter table and warm-up with the default parameters."""

    name: str
    params: list[ParamRead]
    warmup_bars: int
