"""Forecasting: models fitted on stored bars, predictions stored and scored as actual bars arrive."""
