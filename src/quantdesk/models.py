"""Import every domain's tables so that ``Base.metadata`` is complete (Alembic, tests)."""


def load_all_models() -> None:
    import quantdesk.accounts.models
    import quantdesk.backtest.models
    import quantdesk.forecast.models
    import quantdesk.gamification.models
    import quantdesk.market.models
    import quantdesk.signals.models
    import quantdesk.trading.models  # noqa: F401
