"""Gems per trade, milestone bonuses, ranks with ties and leaderboards."""
