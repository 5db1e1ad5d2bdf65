"""quantdesk: a self-hosted market-data, research and paper-trading server."""

# The one place the version lives (pyproject.toml reads it from here): a literal, because looking it up
# with importlib.metadata costs every command-line start tens of milliseconds.
__version__ = "0.1.0"
