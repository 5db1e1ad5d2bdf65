"""The operator's documents stay true to the code."""

from pathlib import Path

from quantdesk.core.config import Settings

ROOT = Path(__file__).parents[2]


def test_the_deployment_guide_lists_every_setting():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    missing = [name for name in Settings.model_fields if f"`QUANTDESK_{name.upper()}`" not in guide]
    assert missing == []
