"""The walk-forward report: the windows, each fold's choice and both metric sets, the stitched
out-of-sample run's metrics and equity."""

import base64

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.accounts.service import Principal
from quantdesk.backtest import service as backtest_service
from quantdesk.backtest import sweeps
from quantdesk.core.clock import utcnow
from quantdesk.reports.builders import Built, metric_rows
from quantdesk.reports.model import Cell, Chart, Paragraph, Parameter, Report, Section, Table

FOLD_METRICS = ("return_pct", "max_drawdown_pct", "sharpe", "trades")
FOLD_COLUMNS = [
    "fold",
    "training",
    "test",
    "parameters",
    *(f"IS {m}" for m in FOLD_METRICS),
    *(f"OOS {m}" for m in FOLD_METRICS),
]


async def walkforward_report(session: AsyncSession, walkforward_id: int, caller: Principal | None = None) -> Built:
    run = await sweeps.get_sweep(session, walkforward_id, caller, kind="walkforward")
    folds, summary, plan = run.results or [], run.summary or {}, run.walkforward or {}
    if run.status != "done":
        sweeps.require_done(run)  # a 409 that says how far it got
    efficiency, stability = summary.get("efficiency"), summary.get("stability")
    rows: list[list[Cell]] = [
        [
            fold["fold"],
            f"{fold['train_start'][:10]} .. {fold['train_end'][:10]}",
            f"{fold['test_start'][:10]} .. {fold['test_end'][:10]}",
            " ".join(f"{k}={v:g}" for k, v in fold["params"].items()),
            *(fold["in_sample"][m] for m in FOLD_METRICS),
            *(fold["out_of_sample"][m] for m in FOLD_METRICS),
        ]
        for fold in folds
    ]
    report = Report(
        kind="walkforward",
        id=str(run.id),
        title=f"Walk-forward {run.id}: {run.symbol} {run.strategy}",
        subject=f"{run.strategy} on {run.symbol} {run.interval} bars, parameters chosen by {plan.get('metric')} "
        "in sample and traded out of sample, fold after fold",
        generated_at=utcnow(),
        parameters=[
            Parameter(name="instrument", value=f"{run.symbol} {run.interval}"),
            Parameter(
                name="strategy", value=run.strategy + (f" v{run.strategy_version}" if run.strategy_version else "")
            ),
            Parameter(name="grid", value=", ".join(f"{k}={v}" for k, v in run.grid.items())),
            Parameter(
                name="windows",
                value=f"{plan.get('mode')}: train {plan.get('train')} bars, test {plan.get('test')}, "
                f"step {plan.get('step')}",
            ),
            Parameter(name="run at", value=f"{run.created_at:%Y-%m-%d %H:%M} UTC"),
        ],
        sections=[
            Section(
                heading="Folds",
                blocks=[
                    Table(
                        title=f"{len(folds)} folds: in-sample best row, then the same parameters out of sample",
                        columns=FOLD_COLUMNS,
                        rows=rows,
                    ),
                    Paragraph(
                        text=f"Walk-forward efficiency (out-of-sample annualised return over in-sample): "
                        f"{'n/a' if efficiency is None else f'{efficiency:.2f}'}. Stability (share of folds that "
                        f"chose the most frequent parameters): {0 if stability is None else stability:.0%}."
                    ),
                ],
            ),
            Section(
                heading="Out of sample",
                blocks=[
                    Table(
                        title="the stitched out-of-sample run (formulas in docs/metrics.md)",
                        columns=["metric", "value"],
                        rows=metric_rows(summary.get("metrics") or {}),
                    ),
                    Chart(key="equity", title="stitched out-of-sample equity, with trades; drawdown below"),
                ],
            ),
        ],
    )

    async def equity_chart() -> bytes:
        from quantdesk.backtest.charts import equity_series, render_equity, trade_times  # matplotlib on demand

        stamps, values = backtest_service.decode_curve(base64.b64decode(summary["equity"]))
        entries, exits = trade_times(summary.get("trades", []))
        title = f"walk-forward {run.id}: {run.symbol} {run.strategy}, out of sample"
        curve = equity_series(stamps, values)
        return await anyio.to_thread.run_sync(render_equity, curve, None, entries, exits, title, 1200, 700)

    return Built(report, {"equity": equity_chart})
