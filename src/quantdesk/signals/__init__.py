"""Trading signals: parsing TradingView-style and chat messages (webhooks and routing come next)."""
