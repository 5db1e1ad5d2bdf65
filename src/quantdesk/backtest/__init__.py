"""Backtesting: strategies turn bars into signals; a compiled simulator turns signals into trades."""
