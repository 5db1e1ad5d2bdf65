"""The signal parser against a corpus of real-world message formats, and against arbitrary text."""

import contextlib
import json
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.signals.parser import Distance, InvalidSignal, normalise_symbol, parse

# (message, expected fields); unlisted fields are not checked.
CORPUS: list[tuple[str, dict[str, Any]]] = [
    # A unit written as its own word makes the number a distance from the entry, never a price.
    ("BUY ACME SL 5 points", {"stop_loss": None, "stop_loss_distance": Distance(D(5), "points")}),
    ("BUY EURUSD SL 20 pips", {"stop_loss": None, "stop_loss_distance": Distance(D(20), "pips")}),
    ("BUY ACME SL 2 %", {"stop_loss": None, "stop_loss_distance": Distance(D(2), "percent")}),
    ("BUY ACME SL: 5 pts", {"stop_loss": None, "stop_loss_distance": Distance(D(5), "points")}),
    (
        "SELL XAUUSD SL 30 pips TP 20 pips 40 pips",
        {"take_profit": [], "take_profit_distances": [Distance(D(20), "pips"), Distance(D(40), "pips")]},
    ),
    # The seed's format, with and without entry.
    (
        "BUY EURUSD @1.0850\nSL 1.0800\nTP 1.0900",
        {
            "side": "buy",
            "symbol": "EURUSD",
            "entry": D("1.0850"),
            "stop_loss": D("1.0800"),
            "take_profit": [D("1.0900")],
        },
    ),
    (
        "SELL GBPUSD @1.2700\nSL 1.2750\nTP 1.2600",
        {"side": "sell", "symbol": "GBPUSD", "entry": D("1.2700"), "stop_loss": D("1.2750")},
    ),
    ("BUY EURUSD\nSL 1.0800\nTP 1.0900", {"side": "buy", "symbol": "EURUSD", "entry": None, "stop_loss": D("1.0800")}),
    ("buy eurusd @ 1.0850 sl 1.08 tp 1.09", {"side": "buy", "symbol": "EURUSD", "entry": D("1.0850")}),
    ("BUY USDJPY @ 151.20", {"side": "buy", "symbol": "USDJPY", "entry": D("151.20"), "take_profit": []}),
    # TradingView strategy JSON: numbers as strings or numbers, sentiment or market_position.
    (
        '{"action": "buy", "ticker": "BTCUSDT", "price": "43120.5", "contracts": "0.01"}',
        {"side": "buy", "symbol": "BTCUSDT", "entry": D("43120.5"), "quantity": D("0.01"), "format": "json"},
    ),
    (
        '{"action": "sell", "ticker": "AAPL", "price": 189.3, "contracts": 5}',
        {"side": "sell", "symbol": "AAPL", "entry": D("189.3"), "quantity": D(5)},
    ),
    (
        '{"action": "sell", "ticker": "ES1!", "contracts": 2, "market_position": "flat"}',
        {"side": "close", "symbol": "ES1!", "quantity": D(2)},
    ),
    ('{"action": "buy", "ticker": "NVDA", "sentiment": "long", "contracts": "3"}', {"side": "buy", "symbol": "NVDA"}),
    ('{"action": "sell", "ticker": "NVDA", "sentiment": "flat", "contracts": "3"}', {"side": "close"}),
    (
        '{"side": "BUY", "symbol": "EUR/USD", "sl": 1.08, "tp": [1.09, 1.095]}',
        {"side": "buy", "symbol": "EURUSD", "stop_loss": D("1.08"), "take_profit": [D("1.09"), D("1.095")]},
    ),
    (
        '{"action":"buy","ticker":"BINANCE:ETHUSDT","price":"2250","id":"abc-123"}',
        {"symbol": "ETHUSDT", "signal_id": "abc-123"},
    ),
    (
        '{"action": "buy", "ticker": "XAUUSD", "price": 2015.5, "stop_loss": 2010, "take_profit": 2025}',
        {"stop_loss": D(2010), "take_profit": [D(2025)]},
    ),
    ('{"Action": "Sell", "Ticker": "spy", "Price": "450.10"}', {"side": "sell", "symbol": "SPY"}),
    ('{"action": "close", "ticker": "TSLA"}', {"side": "close", "symbol": "TSLA"}),
    ('{"action": "exit", "symbol": "GBP_USD"}', {"side": "close", "symbol": "GBPUSD"}),
    ('{"signal": "long", "pair": "BTC/USDT", "qty": 0.5}', {"side": "buy", "symbol": "BTCUSDT", "quantity": D("0.5")}),
    (
        '{"direction": "short", "instrument": "US30", "entry": 38000, "sl": 38200, "tp1": 37800, "tp2": 37600}',
        {"side": "sell", "take_profit": [D(37800), D(37600)]},
    ),
    (
        '{"action": "buy", "ticker": "AMZN", "order_type": "limit", "price": "178.50"}',
        {"order_type": "limit", "entry": D("178.50")},
    ),
    ('{"action": "buy", "ticker": "AMZN", "order_type": "market"}', {"order_type": "market"}),
    (
        '{"action":"buy","ticker":"EURUSD","sl":"30 pips","tp":"60 pips"}',
        {"stop_loss_distance": Distance(D(30), "pips"), "take_profit_distances": [Distance(D(60), "pips")]},
    ),
    ('{"action": "buy", "ticker": "MSFT_DLY", "price": "400"}', {"symbol": "MSFT"}),
    # JSON-looking text that is not valid JSON (a substituted NaN breaks it): read as text.
    # TradingView's default strategy alert text.
    (
        "My Strategy: order buy @ 2 filled on ES1!. New strategy position is 2",
        {"side": "buy", "symbol": "ES1!", "quantity": D(2), "format": "tradingview_strategy"},
    ),
    (
        "My Strategy: order sell @ 2 filled on ES1!. New strategy position is 0",
        {"side": "close", "symbol": "ES1!", "quantity": D(2)},
    ),
    (
        "MACD Cross (12, 26): order sell @ 1 filled on BTCUSDT. New strategy position is -1",
        {"side": "sell", "symbol": "BTCUSDT", "quantity": D(1)},
    ),
    ("RSI Strat: order buy @ 0.5 filled on ETHUSD. New strategy position is 0", {"side": "close", "symbol": "ETHUSD"}),
    # Bot commands.
    (
        "123456,buy,EURUSD,slprice=1.0800,tpprice=1.0900",
        {"side": "buy", "symbol": "EURUSD", "stop_loss": D("1.0800"), "take_profit": [D("1.0900")]},
    ),
    (  # PineConnector's sl= and tp= are pips
        "123456,buy,EURUSD,sl=25,tp=50",
        {
            "stop_loss": None,
            "stop_loss_distance": Distance(D(25), "pips"),
            "take_profit_distances": [Distance(D(50), "pips")],
        },
    ),
    (
        "123456,sell,GBPJPY,sl=30pips,tp=60pips",
        {"side": "sell", "symbol": "GBPJPY", "stop_loss_distance": Distance(D(30), "pips")},
    ),
    (
        "abc,buy,XAUUSD,sl=50points,tp=100points,qty=2",
        {"stop_loss_distance": Distance(D(50), "points"), "quantity": D(2)},
    ),
    ("99,close,EURUSD", {"side": "close", "symbol": "EURUSD"}),
    ("key123,buy,US30,risk=1", {"side": "buy", "symbol": "US30"}),
    ("buy,EURUSD,sl=1.08,tp=1.09", {"side": "buy", "symbol": "EURUSD"}),
    # Chat styles.
    (
        "XAUUSD BUY NOW @ 2015.50 SL 2010 TP1 2020 TP2 2025",
        {
            "side": "buy",
            "symbol": "XAUUSD",
            "entry": D("2015.50"),
            "stop_loss": D(2010),
            "take_profit": [D(2020), D(2025)],
            "order_type": "market",
        },
    ),
    ("EUR/USD SELL @ 1.0900 SL 1.0950 TP 1.0850", {"side": "sell", "symbol": "EURUSD", "entry": D("1.0900")}),
    ("#GOLD BUY 2015 SL 2008 TP 2030", {"symbol": "XAUUSD", "entry": D(2015)}),
    (
        "GOLD SELL NOW 2040\nSL: 2046\nTP: 2030",
        {"side": "sell", "symbol": "XAUUSD", "stop_loss": D(2046), "take_profit": [D(2030)]},
    ),
    ("BUY LIMIT EURUSD @ 1.0820 SL 1.0790 TP 1.0880", {"order_type": "limit", "entry": D("1.0820")}),
    ("SELL LIMIT GBPUSD 1.2750 SL 1.2800 TP 1.2650", {"side": "sell", "order_type": "limit"}),
    (
        "🔥 XAUUSD BUY NOW 🔥\nEntry: 2015.5\nSL: 2010\nTP1: 2020\nTP2: 2025\nTP3: 2030",
        {"symbol": "XAUUSD", "take_profit": [D(2020), D(2025), D(2030)]},
    ),
    (
        "🚀 BTC/USDT LONG 🚀 Entry 43000 Target 45000 Stop 42000",
        {"side": "buy", "symbol": "BTCUSDT", "take_profit": [D(45000)], "stop_loss": D(42000)},
    ),
    ("📉 SHORT ETH/USDT @ 2300 | SL 2350 | TP 2200", {"side": "sell", "symbol": "ETHUSDT", "entry": D(2300)}),
    ("eurusd buy now sl 1.0800 tp 1.0900", {"side": "buy", "symbol": "EURUSD", "stop_loss": D("1.0800")}),
    ("Buy EUR_USD at 1.0850, stop loss 1.0800, take profit 1.0900", {"symbol": "EURUSD", "entry": D("1.0850")}),
    ("*BUY* *EURUSD* @ 1.0850", {"side": "buy", "symbol": "EURUSD"}),
    ("Close EURUSD", {"side": "close", "symbol": "EURUSD"}),
    ("EXIT all XAUUSD", {"side": "close"}),
    ("CLOSE #GOLD now", {"side": "close", "symbol": "XAUUSD"}),
    ("US30 SELL 38000 SL 38150 TP 37700", {"symbol": "US30", "entry": D(38000)}),
    ("NAS100 buy @15000 sl@14950 tp@15100", {"symbol": "NAS100", "stop_loss": D(14950), "take_profit": [D(15100)]}),
    ("BUY BTCUSD size 0.25", {"quantity": D("0.25")}),
    ("SELL AAPL qty 10 @ 189.5", {"quantity": D(10), "entry": D("189.5")}),
    ("Long SOLUSDT 95.5 SL 92 TP 100", {"side": "buy", "symbol": "SOLUSDT", "entry": D("95.5")}),
    ("Short BTCUSD 43000 SL 43500 TP 42000 TP 41000", {"take_profit": [D(42000), D(41000)]}),
    ("XAGUSD BUY NOW\nSL 22.80\nTP 23.40", {"symbol": "XAGUSD", "entry": None}),
    ("SILVER buy 23.00 sl 22.80 tp 23.40", {"symbol": "XAGUSD"}),
    ("Signal: BUY EURJPY @ 162.30 SL 161.90 TP 163.00", {"symbol": "EURJPY"}),
    ("New trade: SELL USDCAD 1.3600 SL 1.3650 TP 1.3500", {"side": "sell", "symbol": "USDCAD"}),
    ("BUY GBPUSD\nEntry zone 1.2650-1.2660\nSL 1.2600\nTP 1.2750", {"entry": D("1.2650")}),
    ("sell usoil @ 78.20 sl 79 tp 76", {"symbol": "USOIL"}),
    ("BUY BITCOIN 43000", {"symbol": "BTCUSD"}),
    ("buy $TSLA 240", {"symbol": "TSLA", "entry": D(240)}),
    ("SELL EURUSD market", {"order_type": "market"}),
    # Lists of targets, numbered levels and two-word labels.
    (
        "🚀 BUY BTCUSDT 🚀\nEntry: 42000\nTargets: 43000, 44000, 45000\nStop: 41000",
        {"entry": D(42000), "take_profit": [D(43000), D(44000), D(45000)], "stop_loss": D(41000)},
    ),
    (
        "BTC/USDT LONG\nEntry zone: 42000 - 42500\nTake profit 1: 43000\nTake profit 2: 44000\n"
        "Stop loss: 41000\nLeverage: 10x",
        {"side": "buy", "symbol": "BTCUSDT", "entry": D(42000), "take_profit": [D(43000), D(44000)]},
    ),
    (
        "BUY EURUSD TP 1: 1.0900 TP 2: 1.0950 SL 1.0800",
        {"entry": None, "stop_loss": D("1.0800"), "take_profit": [D("1.0900"), D("1.0950")]},
    ),
    ("SELL XAUUSD 2030 Targets 2020 2010 Leverage 20", {"take_profit": [D(2020), D(2010)], "quantity": None}),
    ("key123,buy,US30,risk=1", {"entry": None}),
    ("BUY EURUSD risk high 1.0850", {"entry": D("1.0850")}),
    ("BUY EURUSD Leverage 10x 1.0850", {"entry": D("1.0850")}),
    # Stop orders: STOP right after the side is the order type, elsewhere the stop-loss.
    ("Buy Stop EURUSD 1.0900", {"side": "buy", "order_type": "stop", "entry": D("1.0900"), "stop_loss": None}),
    (
        "SELL STOP GBPUSD @ 1.2600 SL 1.2650 TP 1.2500",
        {"side": "sell", "order_type": "stop", "entry": D("1.2600"), "stop_loss": D("1.2650")},
    ),
    ("BUY EURUSD STOP 1.0800", {"order_type": None, "stop_loss": D("1.0800")}),
    ("EXIT STOP EURUSD", {"side": "close", "order_type": None}),  # a close has no stop order
    ('{"action": "buy", "ticker": "EURUSD", "order_type": "stop", "price": "1.09"}', {"order_type": "stop"}),
    # Exits named with the side of the position they close.
    ("exit long BTCUSDT", {"side": "close", "symbol": "BTCUSDT"}),
    ("Long Exit ETHUSDT", {"side": "close", "symbol": "ETHUSDT"}),
    ("CLOSE SHORT XAUUSD", {"side": "close", "symbol": "XAUUSD"}),
    # Emoji stuck to the labels, '/'-separated levels, a quantity before its unit.
    (
        "🟢 BUY XAUUSD\n📍Entry: 2020.00\n❌SL: 2015.00\n✅TP1: 2025.00\n✅TP2: 2030.00",
        {"entry": D("2020.00"), "stop_loss": D("2015.00"), "take_profit": [D("2025.00"), D("2030.00")]},
    ),
    (
        "Sell gold 2040/2043\nsl 2047\ntp 2035/2030",
        {"symbol": "XAUUSD", "entry": D(2040), "stop_loss": D(2047), "take_profit": [D(2035), D(2030)]},
    ),
    (
        "BUY BTCUSDT\nEntry: 42000\nTP: 43000 / 44000 / 45000\nSL: 41000",
        {"take_profit": [D(43000), D(44000), D(45000)], "stop_loss": D(41000)},
    ),
    (
        "sell EURUSD 0.10 lots sl 1.0900 tp 1.0800",
        {"side": "sell", "quantity": D("0.10"), "entry": None, "stop_loss": D("1.0900")},
    ),
    ("buy 100 shares of AAPL", {"symbol": "AAPL", "quantity": D(100), "entry": None}),
    ("BUY EUR/USD @ 1.0850 S/L 1.0800 T/P 1.0900", {"symbol": "EURUSD", "stop_loss": D("1.0800")}),
    ("Close all positions EURUSD", {"side": "close", "symbol": "EURUSD"}),
    ('{"ticker": "AAPL", "action": "buy", "order_size": "10"}', {"quantity": D(10)}),
    # The common TradingView template: the strategy's fields nested under "strategy" (the bar is not read).
    (
        '{"passphrase": "abc", "time": "2024-01-02T15:30:00Z", "exchange": "BINANCE", "ticker": "ETHUSDT", '
        '"bar": {"time": "2024-01-02T15:29:00Z", "open": 2250, "high": 2260, "low": 2240, "close": 2255, '
        '"volume": 812}, "strategy": {"position_size": 1, "order_action": "buy", "order_contracts": 1, '
        '"order_price": 2255.5, "order_id": "Long", "market_position": "long", "market_position_size": 1, '
        '"prev_market_position": "flat", "prev_market_position_size": 0}}',
        {"side": "buy", "symbol": "ETHUSDT", "entry": D("2255.5"), "quantity": D(1), "signal_id": None},
    ),
    # PineConnector's commands: compound orders, explicit units, and fields that are not the order's.
    (
        "60123456789,buy,EURUSD,risk=1,sl=20pips,tp=40pips,betrigger=10,beoffset=1",
        {"entry": None, "stop_loss_distance": Distance(D(20), "pips"), "signal_id": "60123456789"},
    ),
    (
        "60123456789,sell,GBPJPY,vol_dollar=50,sl_pips=20,tp_pips=45",
        {
            "side": "sell",
            "entry": None,
            "stop_loss_distance": Distance(D(20), "pips"),
            "take_profit_distances": [Distance(D(45), "pips")],
        },
    ),
    (
        "60123456789,buy,EURUSD,vol_lots=0.1,sl_price=1.0800,tp_price=1.0900",
        {"quantity": D("0.1"), "stop_loss": D("1.0800"), "take_profit": [D("1.0900")], "entry": None},
    ),
    ("60123456789,buy,BTCUSD,risk=1,sl_pct=1,tp_pct=2.5", {"stop_loss_distance": Distance(D(1), "percent")}),
    ('60123456789,buy,EURUSD,risk=1,comment="Short squeeze"', {"side": "buy", "symbol": "EURUSD"}),
    (
        "60123456789,buylimit,EURUSD,risk=1,price=1.0800,slprice=1.0750",
        {"side": "buy", "order_type": "limit", "entry": D("1.0800"), "stop_loss": D("1.0750")},
    ),
    ("60123456789,sellstop,XAUUSD,price=2300", {"side": "sell", "order_type": "stop", "entry": D(2300)}),
    ("60123456789,closelong,GBPUSD", {"side": "close", "symbol": "GBPUSD"}),
    ("60123456789 , closeshort , EURUSD", {"side": "close", "symbol": "EURUSD"}),
    ("60123456789,long,US30,risk=1", {"side": "buy", "symbol": "US30"}),
    ("60123456789,bear,NAS100,risk=1", {"side": "sell", "symbol": "NAS100"}),
    # JSON levels with their unit in the key.
    (
        '{"action": "BUY", "symbol": "EURUSD", "lots": 0.1, "sl_pips": 20, "tp_pips": 40}',
        {"stop_loss_distance": Distance(D(20), "pips"), "take_profit_distances": [Distance(D(40), "pips")]},
    ),
    (
        '{"action": "sell", "ticker": "XAUUSD", "stop_loss_price": 2360, "take_profit_price": 2330}',
        {"stop_loss": D(2360), "take_profit": [D(2330)]},
    ),
    # Levels as objects, the way Alpaca's orders and some bots write them.
    (
        '{"action": "buy", "ticker": "AAPL", "quantity": "10", "stop_loss": {"stop_price": "180", '
        '"limit_price": "179"}, "take_profit": {"limit_price": "200"}}',
        {"stop_loss": D(180), "take_profit": [D(200)], "quantity": D(10)},
    ),
    (
        '{"side": "sell", "symbol": "EURUSD", "type": "limit", "price": 1.09, "stopLoss": {"price": 1.095}, '
        '"takeProfit": {"price": 1.08}}',
        {"order_type": "limit", "stop_loss": D("1.095"), "take_profit": [D("1.08")]},
    ),
    # An exchange before the ticker, TradingView's perpetual suffix, thousands separators.
    ("BINANCE:BTCUSDT.P buy", {"side": "buy", "symbol": "BTCUSDT"}),
    ("OANDA:EURUSD sell 1.0850", {"side": "sell", "symbol": "EURUSD", "entry": D("1.0850")}),
    ("ENTRY LONG BYBIT:ETHUSDT.P", {"side": "buy", "symbol": "ETHUSDT"}),
    ("Buy BTC @ $43,250.50 SL 42,800 TP 44,500", {"entry": D("43250.50"), "stop_loss": D(42800)}),
    # Lists of targets written with dashes or spaces after one label.
    (
        "LONG #BTC/USDT 5x\nEntry: 42000-42500\nTP: 43000-44000-45000\nSL: 41000",
        {"entry": D(42000), "take_profit": [D(43000), D(44000), D(45000)], "stop_loss": D(41000)},
    ),
    ("Sell EURUSD 1.0850 SL 1.0900 TP 1.0800 1.0750", {"take_profit": [D("1.0800"), D("1.0750")]}),
    # A number between the side and the symbol is how many.
    ("BUY 100 AAPL", {"quantity": D(100), "entry": None, "symbol": "AAPL"}),
    ("buy 0.5 BTCUSD", {"quantity": D("0.5"), "entry": None}),
    ("Order BUY 1 BTCUSDT @ 42000", {"quantity": D(1), "entry": D(42000)}),
    (
        '{"ticker": "ETHUSDT", "strategy": {"order_action": "sell", "order_contracts": "2", '
        '"order_price": "2300", "market_position": "flat"}}',
        {"side": "close", "quantity": D(2)},
    ),
]

REJECTED = [
    ("", "empty"),
    ("   \n  ", "empty"),
    ("hello there", "exactly one side"),
    ("BUY SELL EURUSD", "exactly one side"),
    ("BUY @ 1.0850", "no symbol"),
    ('{"action": "{{strategy.order.action}}", "ticker": "{{ticker}}"}', "placeholder"),
    ("BUY {{ticker}} @ {{close}}", "placeholder"),
    ("}} BUY ACME {{", "broken placeholder at character 13"),
    ("BUY ACME @100 TP " + " ".join(str(101 + n) for n in range(11)), "11 take-profit levels; at most 10"),
    ('{"strategy":{"order":{"action":"buy"}},"ticker":"{{ticker"}', "broken placeholder"),
    ("BUY EURUSD @1.0850 SL 1.0900", "must be below the entry"),
    ('{"action": "buy", "ticker": "EURUSD", "price": NaN', "not valid JSON"),  # never re-read as text
    ("BUY EURUSD @1.0850 TP 1.0800", "must be above the entry"),
    ("SELL EURUSD @1.0850 SL 1.0800", "must be above the entry"),
    ('{"action": "hold", "ticker": "AAPL"}', "no side"),
    ('{"action": "buy"}', "no symbol"),
    ('{"action": "buy", "ticker": "AAPL", "price": -5}', "positive"),
    ('{"action": "buy", "ticker": "AAPL", "contracts": "abc"}', "not a number"),
    ('{"action": "buy", "ticker": "AAPL", "price": "NaN"}', "positive finite"),
    ("BUY EURUSD SL 0", "positive"),
    ("Buy Stop EURUSD", "needs the price that triggers it"),
    ("BUY LONG SELL EURUSD", "exactly one side"),
    ("exit long, then short BTCUSDT", "exactly one side"),
    ("TP1 hit EURUSD", "exactly one side"),  # a notice, not a signal
    ("60123456789,cancellong,EURUSD", "exactly one side"),  # canceling pending orders is not a signal here
]


@pytest.mark.parametrize(("message", "expected"), CORPUS, ids=[m[:40] for m, _ in CORPUS])
def test_the_corpus(message: str, expected: dict[str, Any]):
    signal = parse(message)
    for name, value in expected.items():
        assert getattr(signal, name) == value, (name, signal)


def test_the_corpus_is_large():
    assert len(CORPUS) >= 60


@pytest.mark.parametrize(("message", "reason"), REJECTED)
def test_invalid_signals_say_why(message: str, reason: str):
    with pytest.raises(InvalidSignal, match=reason):
        parse(message)


def test_bytes_and_symbols():
    assert parse(b"BUY EURUSD").symbol == "EURUSD"
    assert normalise_symbol("OANDA:EUR_USD") == "EURUSD"
    assert normalise_symbol("#gold") == "XAUUSD"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_input_raises_nothing_but_invalid_signal(body: str | bytes):
    with contextlib.suppress(InvalidSignal):
        parse(body)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=10),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c),
        max_leaves=10,
    )
)
def test_arbitrary_json_raises_nothing_but_invalid_signal(value: object):
    with contextlib.suppress(InvalidSignal):
        parse(json.dumps({"action": "buy", "ticker": "X", "price": value, "sl": value, "tp": value}))
