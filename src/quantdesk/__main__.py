"""``python -m quantdesk`` runs the CLI."""

from quantdesk.cli.main import app

app()
