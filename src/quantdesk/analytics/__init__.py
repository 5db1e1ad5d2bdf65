"""Pure analytics on bar DataFrames: returns, rolling statistics, indicators, resampling, summaries.

Nothing here touches a database or HTTP; every function takes and returns pandas objects.
"""
