"""Reports of instruments, backtests and forecasts: one model, rendered as JSON or as a PDF."""
