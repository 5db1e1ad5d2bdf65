"""One parser for trading signals, driven by tables of words rather than a regex per format.

A body is JSON when it parses as a JSON object (whatever the content type said); otherwise it is text,
split into words and read against the word tables below. Recognised shapes include TradingView strategy
JSON and its default alert text, the seed's ``BUY EURUSD @1.0850 / SL 1.0800 / TP 1.0900``, bot commands
(``ID,buy,EURUSD,sl=20pips``) and chat styles (``XAUUSD BUY NOW @ 2015.50 SL 2010 TP1 2020 TP2 2025``).
Every failure is an ``InvalidSignal`` that says why; nothing else escapes.
"""

import json
import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from quantdesk.core.errors import ValidationFailed

SIDES = {
    "BUY": "buy", "LONG": "buy", "BULLISH": "buy", "BULL": "buy",
    "SELL": "sell", "SHORT": "sell", "BEARISH": "sell", "BEAR": "sell",
    "CLOSE": "close", "EXIT": "close", "FLAT": "close", "FLATTEN": "close",
    # Russian chat channels
    "ЛОНГ": "buy", "ПОКУПКА": "buy", "КУПИТЬ": "buy", "ШОРТ": "sell", "ПРОДАЖА": "sell", "ПРОДАТЬ": "sell",
    "ЗАКРЫТЬ": "close",
    # 3Commas' signal-bot actions
    "ENTER_LONG": "buy", "ENTER_SHORT": "sell", "EXIT_LONG": "close", "EXIT_SHORT": "close",
    "CLOSE_AT_MARKET_PRICE": "close", "CLOSE_AT_MARKET": "close",
}  # fmt: skip
# PineConnector's one-word commands, read as the words they join.
COMPOUND_COMMANDS = {
    "BUYLIMIT": ("BUY", "LIMIT"), "BUYSTOP": ("BUY", "STOP"), "SELLLIMIT": ("SELL", "LIMIT"),
    "SELLSTOP": ("SELL", "STOP"), "CLOSELONG": ("CLOSE", "LONG"), "CLOSESHORT": ("CLOSE", "SHORT"),
    "CLOSELONGSHORT": ("CLOSE",), "CLOSEALL": ("CLOSE",),
}  # fmt: skip
ORDER_TYPES = {"LIMIT": "limit", "MARKET": "market", "NOW": "market", "MKT": "market"}
# In JSON an order type is a field of its own; in text STOP is one only right after the side ("BUY STOP").
JSON_ORDER_TYPES = ORDER_TYPES | {"STOP": "stop"}
STOP_LABELS = {"SL", "STOP", "STOPLOSS", "STOP-LOSS", "S/L", "S.L", "СЛ", "СТОП"}
TAKE_LABELS = {"TP", "TAKEPROFIT", "TAKE-PROFIT", "TARGET", "T/P", "T.P", "TGT", "ТП", "ЦЕЛЬ"}
# "Targets: 43000, 44000": a plural label takes every number that follows it.
TAKE_LISTS = {"TARGETS", "TPS", "TAKEPROFITS"}
# Labels written as two words, read as one.
TWO_WORD_LABELS = {("TAKE", "PROFIT"): "TAKEPROFIT", ("TAKE", "PROFITS"): "TAKEPROFITS", ("STOP", "LOSS"): "STOPLOSS"}
ENTRY_LABELS = {"@", "AT", "ENTRY", "PRICE", "ENTER", "E", "FROM", "ВХОД"}
# Labels whose number is not the order's: "Leverage: 10x", "risk=1" (a percentage of the account).
IGNORED_LABELS = {"LEVERAGE", "LEV", "RISK"}
QUANTITY_LABELS = {"QTY", "QUANTITY", "SIZE", "LOTS", "LOT", "CONTRACTS", "VOLUME", "UNITS"}
# Words after a number that make it the quantity: "0.10 lots", "100 shares".
QUANTITY_UNITS = {"LOTS", "LOT", "UNITS", "UNIT", "SHARES", "SHARE", "CONTRACTS", "CONTRACT", "COINS"}
WORD_STARTS = "#$@/+-."  # kept at the start of a word: #GOLD, $TSLA, -5, .5
DISTANCE_UNITS = {
    "PIPS": "pips", "PIP": "pips", "POINTS": "points", "POINT": "points", "PTS": "points",
    "%": "percent", "PCT": "percent", "PERCENT": "percent",
}  # fmt: skip
NOISE = {
    "NOW", "ORDER", "SIGNAL", "ALERT", "NEW", "AND", "THE", "ON", "IN", "ZONE", "FILLED", "POSITION", "TRADE",
    "ALL", "ACTION", "TICKER", "SYMBOL", "PAIR", "SIDE", "NAN", "POSITIONS", "TRADES", "ORDERS", "OF", "HERE",
    "DIRECTION", "FOREX", "CURRENCY", "TYPE", "INSTRUMENT", "ASSET", "COIN", "1ST", "2ND", "3RD", "4TH",
}  # fmt: skip
# Common names of instruments that chat signals use instead of the ticker.
ALIASES = {"GOLD": "XAUUSD", "SILVER": "XAGUSD", "BITCOIN": "BTCUSD", "BTC": "BTCUSD", "ETH": "ETHUSD", "OIL": "USOIL"}
ORDINALS = {"1", "2", "3", "4", "5", "6"}  # of take-profit levels: "TP 1: 2020"
LARGEST_DIGITS = 12  # what the trading ledger holds: 20 digits, 8 of them decimals
SMALLEST_STEP = Decimal("1e-8")
JSON_SIDE_KEYS = ("action", "side", "signal", "order", "direction", "type", "order_action")
# Objects whose fields are the signal's own, as in the common TradingView template that nests
# {{strategy.order.action}} and friends under "strategy" (never "bar": its close is not an entry).
JSON_CONTAINERS = {"strategy", "order", "signal", "data", "alert", "trade"}
JSON_SYMBOL_KEYS = ("ticker", "symbol", "tv_instrument", "pair", "instrument", "market", "asset")
# The keys of the levels, each with the unit its name gives (none: a price), in order of preference.
JSON_STOP_KEYS = {
    "stop_loss": "", "sl": "", "stoploss": "", "stop": "", "sl_price": "", "stop_loss_price": "",
    "sl_pips": "PIPS", "stop_loss_pips": "PIPS", "slpips": "PIPS", "sl_points": "POINTS", "slpoints": "POINTS",
    "sl_pct": "%", "stop_loss_pct": "%", "sl_percent": "%",
}  # fmt: skip
JSON_TAKE_KEYS = {
    "take_profit": "", "tp": "", "takeprofit": "", "target": "", "targets": "", "tp_price": "", "take_profit_price": "",
    "tp_pips": "PIPS", "take_profit_pips": "PIPS", "tppips": "PIPS", "tp_points": "POINTS", "tppoints": "POINTS",
    "tp_pct": "%", "take_profit_pct": "%", "tp_percent": "%",
}  # fmt: skip
LEVEL_PRICE_KEYS = ("stop_price", "limit_price", "price", "trigger_price", "triggerprice")
# PineConnector's ``key=value`` fields that are the order's, as the words the text reader knows. Any other
# field (its risk sizing, break-even and trailing settings, a comment, a secret) is not read.
BOT_FIELDS = {
    # sl= and tp= are pips in PineConnector's syntax; slprice= and tpprice= are prices.
    "SL": "SL {}PIPS", "TP": "TP {}PIPS", "SLPRICE": "SL {}", "TPPRICE": "TP {}", "SLPIPS": "SL {}PIPS",
    "TPPIPS": "TP {}PIPS", "SL_PRICE": "SL {}", "SL_PIPS": "SL {}PIPS", "SL_POINTS": "SL {}POINTS", "SL_PCT": "SL {}%",
    "TP_PRICE": "TP {}", "TP_PIPS": "TP {}PIPS", "TP_POINTS": "TP {}POINTS", "TP_PCT": "TP {}%",
    "TP1": "TP {}", "TP2": "TP {}", "TP3": "TP {}", "PRICE": "PRICE {}", "ENTRY": "PRICE {}",
    "QTY": "QTY {}", "QUANTITY": "QTY {}", "LOTS": "QTY {}", "VOL_LOTS": "QTY {}", "SIZE": "QTY {}",
    "CONTRACTS": "QTY {}",
}  # fmt: skip
# "43,250.50" and "1,000": commas between groups of three digits (a list "2020,2025" keeps its own).
THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])")


class InvalidSignal(ValidationFailed):
    code = "invalid_signal"


@dataclass(frozen=True)
class Distance:
    value: Decimal
    unit: str  # pips or points


@dataclass
class ParsedSignal:
    side: str  # buy, sell or close
    symbol: str
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: list[Decimal] = field(default_factory=list)
    stop_loss_distance: Distance | None = None
    take_profit_distances: list[Distance] = field(default_factory=list)
    quantity: Decimal | None = None
    order_type: str | None = None  # market, limit, stop (at the entry) or None (the account's default)
    signal_id: str | None = None
    format: str = "text"
    bare_numbers: int = field(default=0, compare=False)  # unlabelled numbers after the entry (text only)


QUOTES = ("USDT", "USDC", "BUSD", "USD", "BTC", "ETH", "EUR", "BNB")


def quote_base(pair: str) -> str:
    """3Commas writes pairs quote first: ``USDT_BTC`` is BTCUSDT."""
    quote, underscore, base = pair.partition("_")
    return f"{base}{quote}" if underscore and quote.upper() in QUOTES and base else pair


def normalise_symbol(raw: str) -> str:
    """``EUR/USD``, ``eur_usd``, ``#GOLD``, ``BINANCE:BTCUSDT`` and ``BTCUSDT.P`` to one instrument symbol."""
    text = raw.strip().upper().lstrip("#$")
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    for suffix in ("_DLY", "_DL", ".P"):  # TradingView's daily and perpetual-contract tickers
        text = text.removesuffix(suffix)
    text = text.replace("/", "").replace("_", "").replace("-", "")
    return ALIASES.get(text, text)


def _number(raw: object, what: str) -> Decimal:
    try:
        value = Decimal(str(raw).replace(",", "").strip())
    except (InvalidOperation, ValueError):
        raise InvalidSignal(f"{what} '{raw}' is not a number") from None
    if not value.is_finite() or value <= 0:
        raise InvalidSignal(f"{what} must be a positive finite number, not {raw}")
    if value.adjusted() >= LARGEST_DIGITS:
        raise InvalidSignal(f"{what} {raw} is too large (at most {LARGEST_DIGITS} digits before the point)")
    if value != value.quantize(SMALLEST_STEP, rounding=ROUND_DOWN):
        raise InvalidSignal(f"{what} {raw} has more than 8 decimal places")
    return value


MAX_LEVEL_DISTANCE_PCT = 50.0  # a level further from the entry than this is a typo, not a plan


def parse(body: str | bytes, max_level_distance_pct: float = MAX_LEVEL_DISTANCE_PCT) -> ParsedSignal:
    """The signal in a webhook body, or ``InvalidSignal`` with the reason in words. A stop-loss or
    take-profit more than ``max_level_distance_pct`` from the entry is refused."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip().lstrip("\ufeff")
    if not text:
        raise InvalidSignal("the signal is empty")
    _refuse_placeholders(text)
    _refuse_injections(text)
    data = _json_object(text)
    signal = _from_json(_flattened(data)) if data is not None else _automation_format(text) or _from_text(text)
    _check_symbol(signal.symbol)
    if signal.side == "close":
        signal.order_type = None  # a close is at the market whatever the message called it
    _check(signal, max_level_distance_pct)
    return signal


SYMBOL_CHARACTERS = re.compile(r"^[A-Z0-9._!/\-]{1,32}$")


def _check_symbol(symbol: str) -> None:
    if not SYMBOL_CHARACTERS.match(symbol):
        shown = symbol if symbol.isprintable() else ascii(symbol)
        raise InvalidSignal(
            f"the symbol {shown[:40]!r} is not one: a symbol has letters, digits and . _ ! / - only, at most 32"
        )


_INJECTION = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|\$\{")


def _refuse_injections(text: str) -> None:
    """Markup or a ${...} lookup is never part of a trading signal: refused before anything reads it."""
    found = _INJECTION.search(text)
    if found is not None:
        raise InvalidSignal(
            f"the message holds markup or a lookup ({found.group()[:20]!r}); a symbol has letters, digits and "
            ". _ ! / - only"
        )


_PLACEHOLDER = re.compile(r"\{\{[^{}]{0,64}\}\}")


def _refuse_placeholders(text: str) -> None:
    """TradingView fills ``{{...}}`` only in alerts that know the variable; one left in the message, or a
    broken one (``{{ticker`` with no end), means the alert's template is wrong, not that a trade was meant."""
    found = _PLACEHOLDER.search(text)
    if found is not None:
        raise InvalidSignal(
            f"the message still holds a placeholder ({found.group()}): "
            "TradingView fills those only in matching alerts; check the alert's message"
        )
    if "{{" in text:  # (a lone "}}" is nested JSON's ending)
        at = text.index("{{")
        raise InvalidSignal(
            f"the message holds a broken placeholder at character {at + 1} ({text[at : at + 24]!r}): "
            "write TradingView variables as {{ticker}}, with both pairs of braces"
        )


# Built once: json.loads with an option builds a decoder per call. A bare NaN or Infinity (which
# TradingView writes for an empty plot value) reads as NaN, refused as not finite.
_JSON = json.JSONDecoder(parse_constant=lambda name: math.nan)


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object of a body that starts with '{'; one that is not valid JSON is refused (read as
    text, a broken template would trade on whatever words survive)."""
    if not text.startswith("{"):
        return None
    try:
        data = _JSON.decode(text)
    except json.JSONDecodeError as broken:
        raise InvalidSignal(
            f"the message starts like JSON but is not valid JSON ({broken.msg} at line {broken.lineno}, "
            f"column {broken.colno}): check the alert's message for a stray comma or quote"
        ) from None
    except (ValueError, RecursionError):
        raise InvalidSignal("the message starts like JSON but is not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):  # pragma: no cover - a text starting with '{' decodes to an object or fails
        raise InvalidSignal('the message is JSON but not an object: send {"action": ..., "ticker": ...}')
    return data


def _flattened(data: dict[str, Any]) -> dict[str, Any]:
    """The object's own fields, then those of its known containers (an outer field wins), by their names
    in lower case. A level given as an object (Alpaca's ``"stop_loss": {"stop_price": ...}``) is its price."""
    flat = {str(key).lower(): value for key, value in data.items() if not isinstance(value, dict)}
    for key, value in data.items():
        if isinstance(value, dict) and (str(key).lower() in JSON_STOP_KEYS or str(key).lower() in JSON_TAKE_KEYS):
            flat[str(key).lower()] = _first(_lowered(value), LEVEL_PRICE_KEYS)
    for key, value in data.items():
        if isinstance(value, dict) and str(key).lower() in JSON_CONTAINERS:
            for inner_key, inner in value.items():
                if not isinstance(inner, dict):
                    flat.setdefault(str(inner_key).lower(), inner)
    return flat


def _lowered(data: dict[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in data.items()}


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of ``keys`` that ``data`` (its names in lower case) gives a value."""
    return next((data[key] for key in keys if data.get(key) not in (None, "")), None)


def _from_json(data: dict[str, Any]) -> ParsedSignal:
    if data.get("message_type") == "bot" and _first(data, JSON_SIDE_KEYS) is None:
        data = {**data, "action": "buy"}  # a 3Commas bot message without an action starts a deal
    action = _first(data, JSON_SIDE_KEYS)
    position = _first(data, ("market_position", "sentiment", "position"))
    side = SIDES.get(str(action).strip().upper()) if action is not None else None
    if str(position).strip().lower() == "flat":
        side = "close"
    if side is None:
        raise InvalidSignal(f"no side: give 'action' as buy, sell or close (got {action!r})")
    symbol = _first(data, JSON_SYMBOL_KEYS)
    if symbol is None:
        raise InvalidSignal("no symbol: give 'ticker' or 'symbol'")
    if "pair" in data and symbol == data["pair"]:
        symbol = quote_base(str(symbol))
    signal = ParsedSignal(side=side, symbol=normalise_symbol(str(symbol)), format="json")
    price = _first(data, ("price", "entry", "entry_price", "limit_price", "limit", "order_price"))
    signal.entry = _number(price, "price") if price is not None else None
    quantity = _first(
        data, ("contracts", "quantity", "qty", "size", "lots", "volume", "units", "order_contracts", "order_size")
    )
    signal.quantity = _number(quantity, "quantity") if quantity is not None else None
    _json_levels(data, signal)
    kind = _first(data, ("order_type", "ordertype", "type"))
    signal.order_type = JSON_ORDER_TYPES.get(str(kind).upper()) if kind is not None else None
    ident = _first(data, ("id", "signal_id", "client_order_id", "alert_id"))
    signal.signal_id = str(ident) if ident is not None else None
    return signal


def _json_levels(data: dict[str, Any], signal: ParsedSignal) -> None:
    stop, unit = _first_level(data, JSON_STOP_KEYS)
    if stop is not None:
        _set_stop(signal, f"{stop}{unit}")
    takes, unit = _first_level(data, JSON_TAKE_KEYS)
    values = takes if isinstance(takes, list) else [takes] if takes is not None else []
    values += [v for k, v in sorted(data.items()) if str(k).lower() in ("tp1", "tp2", "tp3", "tp4") and v]
    for value in values:
        _add_take(signal, f"{value}{unit}")


def _first_level(data: dict[str, Any], keys: dict[str, str]) -> tuple[Any, str]:
    """The value of the first of ``keys`` the object has, with the unit its key names."""
    found = next((key for key in keys if data.get(key) not in (None, "")), None)
    return (data[found], keys[found]) if found is not None else (None, "")


def _split_unit(raw: str) -> tuple[str, str | None]:
    upper = raw.upper().strip()
    for word, unit in DISTANCE_UNITS.items():
        if upper.endswith(word):
            return upper[: -len(word)].strip(), unit
    return upper, None


def _set_stop(signal: ParsedSignal, raw: str) -> None:
    number, unit = _split_unit(raw)
    if unit:
        distance = Distance(_number(number, "stop-loss distance"), unit)
        if signal.stop_loss_distance not in (None, distance) or signal.stop_loss is not None:
            raise InvalidSignal(f"the message gives two different stop-losses ({raw} and another): give one")
        signal.stop_loss_distance = distance
    else:
        price = _number(number, "stop-loss")
        if signal.stop_loss not in (None, price) or signal.stop_loss_distance is not None:
            raise InvalidSignal(
                f"the message gives two different stop-losses, {signal.stop_loss} and {price}: give one"
            )
        signal.stop_loss = price


def _add_take(signal: ParsedSignal, raw: str) -> None:
    number, unit = _split_unit(raw)
    if unit:
        signal.take_profit_distances.append(Distance(_number(number, "take-profit distance"), unit))
    else:
        signal.take_profit.append(_number(number, "take-profit"))


def _words(text: str) -> list[str]:
    """Upper-case words and numbers; '=' and ':' separate a label from its value, '@' is its own word,
    and so is the '/' between the levels of a list ("TP 2035/2030")."""
    cleaned = THOUSANDS.sub(lambda number: number.group().replace(",", ""), text.upper())
    cleaned = " ".join(_without_exchange(token) for token in cleaned.split())
    for separator in ("\n", "\r", "\t", ",", ";", "|", "=", ":", "(", ")", "[", "]", "{", "}", '"', "!!"):
        cleaned = cleaned.replace(separator, " ")
    cleaned = cleaned.replace("@", " @ ")
    words: list[str] = []
    for raw in cleaned.split():
        word = "%" if raw == "%" else _trimmed(raw)
        if word.startswith("$") and word[1:2].isdigit():
            word = word[1:]  # a price in dollars, "$189.50" ("$TSLA" is a ticker)
        if word in COMPOUND_COMMANDS:
            words.extend(COMPOUND_COMMANDS[word])
            continue
        levels = word.split("-")
        if len(levels) > 1 and all(_is_number(level) for level in levels):
            if words and _label(words[-1]) in ("take", "takes"):
                words.extend(" / ".join(levels).split())  # targets "TP: 43000-44000-45000"
                continue
            word = levels[0]  # an entry zone "2015-2018": its first price
        parts = word.split("/")
        if len(parts) > 1 and all(_is_number(part) for part in parts):
            words.extend(" / ".join(parts).split())  # levels "2040/2043"; a pair "EUR/USD" stays a word
            continue
        if word and any(ch.isalnum() or ch in "@/%" for ch in word):
            _append_word(words, word)
    return words


def _append_word(words: list[str], word: str) -> None:
    joined = TWO_WORD_LABELS.get((words[-1], word)) if words else None
    if joined:
        words[-1] = joined
    elif word in DISTANCE_UNITS and words and _is_number(words[-1]) and _split_unit(words[-1])[1] is None:
        words[-1] += word  # "SL 5 points", "SL 2 %": a distance, never the price 5 or 2
    elif word != "%":
        words.append(word)


def _without_exchange(token: str) -> str:
    """``BINANCE:BTCUSDT.P`` without its exchange; a label and its value ("SL:2010", "Entry:market") stay."""
    exchange, colon, rest = token.partition(":")
    if not (colon and exchange[:1].isalpha() and rest[:1].isalpha() and exchange.replace("_", "").isalnum()):
        return token
    return rest if _is_plain_word(exchange) and _is_plain_word(_trimmed(rest)) else token


def _is_plain_word(word: str) -> bool:
    """Neither a side, a label, an order type nor a filler: it may name an instrument."""
    known = word in SIDES or word in ORDER_TYPES or word in NOISE or word in QUANTITY_UNITS or word in COMPOUND_COMMANDS
    return not known and _label(word) is None


def _trimmed(word: str) -> str:
    """The word without what decorates it: markdown, quotes, sentence ends, emoji ("✅TP1", "📍ENTRY")."""
    start, end = 0, len(word)
    while start < end and not (word[start].isalnum() or word[start] in WORD_STARTS):
        start += 1
    while end > start and not word[end - 1].isalnum():
        if word[end - 1] in "!%" and end - start > 1 and word[end - 2].isdigit():
            break  # a futures contract (ES1!), or a percentage
        if end - start == 1 and word[start] in "@/":
            break  # '@' or a list separator on its own
        end -= 1
    return word[start:end]


def _is_number(word: str) -> bool:
    number, _ = _split_unit(word)
    try:
        return Decimal(number.replace(",", "")).is_finite()
    except InvalidOperation:
        return False


def _label(word: str) -> str | None:
    base = word.rstrip("0123456789") if word.startswith(("TP", "SL")) else word
    if base in STOP_LABELS or word in STOP_LABELS:
        return "stop"
    if base in TAKE_LABELS or word in TAKE_LABELS:
        return "take"
    if word in TAKE_LISTS:
        return "takes"
    if word in ENTRY_LABELS:
        return "entry"
    if word in QUANTITY_LABELS:
        return "quantity"
    if word in IGNORED_LABELS:
        return "ignored"
    return None


# Automation tools' own syntaxes, each recognised by its shape before the text reader sees the words.
_ALERTATRON = re.compile(r"^\s*\w+\(\s*([^()\s]+)\s*\)\s*\{(.*)\}\s*$", re.S)
_ALERTATRON_COMMAND = re.compile(r"(\w+)\s*\(([^()]*)\)")
_KEY_VALUE = re.compile(r"^(?:[a-z]{1,3}=[^\s=]+\s*)+$", re.I)


def _automation_format(text: str) -> ParsedSignal | None:
    """Alertatron's ``Keys(SYMBOL) { market(side=buy, amount=1); }``, compact ``e=exchange s=SYMBOL
    b=buy q=0.01 t=market`` lines (``c=position`` closes) and pipe-separated ``id|strategy|side|symbol``;
    None for anything else."""
    if found := _ALERTATRON.match(text):
        return _alertatron(found.group(1), found.group(2))
    if _KEY_VALUE.match(text) and "s=" in text.lower():
        return _key_values(dict(item.split("=", 1) for item in text.lower().split()))
    fields = [field.strip() for field in text.split("|")]
    if len(fields) >= 4 and "\n" not in text and SIDES.get(fields[2].upper()) is not None:
        signal = ParsedSignal(side=SIDES[fields[2].upper()], symbol=normalise_symbol(fields[3]), format="pipe")
        signal.signal_id = fields[0] or None
        return signal
    return None


def _alertatron(symbol: str, body: str) -> ParsedSignal:
    command = _ALERTATRON_COMMAND.search(body)
    if command is None:
        raise InvalidSignal("an Alertatron block needs a command such as market(side=buy, amount=1)")
    args = {
        key.strip().lower(): value.strip() for key, _, value in (a.partition("=") for a in command.group(2).split(","))
    }
    side = SIDES.get(args.get("side", "").upper())
    if side is None:
        raise InvalidSignal(f"{command.group(1)}(...) needs side=buy or side=sell")
    signal = ParsedSignal(side=side, symbol=normalise_symbol(symbol), format="alertatron")
    if "amount" in args:
        signal.quantity = _number(args["amount"], "amount")
    if command.group(1).lower() == "limit":
        signal.order_type = "limit"
        offset = args.get("offset", "")
        if offset.startswith("@"):  # "@64000" is a price; other offsets are relative to the market
            signal.entry = _number(offset[1:], "offset")
    return signal


def _key_values(fields: dict[str, str]) -> ParsedSignal:
    close = fields.get("c") in ("position", "order", "all")
    side = "close" if close else SIDES.get(fields.get("b", "").upper())
    if side is None:
        raise InvalidSignal("a key=value signal needs b=buy or b=sell (or c=position to close)")
    signal = ParsedSignal(side=side, symbol=normalise_symbol(fields["s"]), format="key_value")
    if "q" in fields:
        signal.quantity = _number(fields["q"], "quantity (q=)")
    if "p" in fields:
        signal.entry = _number(fields["p"], "price (p=)")
    if "t" in fields:
        signal.order_type = JSON_ORDER_TYPES.get(fields["t"].upper())
    return signal


def _bot_command(text: str) -> tuple[str | None, str]:
    """``ID,buy,EURUSD,sl=...`` (PineConnector's syntax): a comma-separated command whose second field is
    the command has an id first; its ``key=value`` fields are read through BOT_FIELDS."""
    fields = [field.strip() for field in text.split(",")]
    if len(fields) < 3 or (fields[1].upper() not in SIDES and fields[1].upper() not in COMPOUND_COMMANDS):
        return None, text
    words = fields[1:3]
    for item in fields[3:]:
        key, equals, value = item.partition("=")
        if not equals:
            words.append(item)
        elif template := BOT_FIELDS.get(key.strip().upper()):
            value = value.strip().strip("'\"")
            if _split_unit(value)[1] is not None:  # "sl=20pips": the value names its unit
                template = template.split("{}")[0] + "{}"
            words.append(template.format(value))
    return fields[0] or None, " ".join(words)


_DECIMAL_COMMA = re.compile(r"(?<![\d.,])\d{1,3},(?:\d{1,2}|\d{4,})(?![\d.,])")


# Instruments chat channels name in words, and symbols they split: read as the symbol (before the words
# are split, so that "Australian Dollar" is one instrument, not two words).
NAMED_INSTRUMENTS = {
    "australian dollar": "AUDUSD", "aussie": "AUDUSD", "new zealand dollar": "NZDUSD", "kiwi": "NZDUSD",
    "canadian dollar": "USDCAD", "loonie": "USDCAD", "swiss franc": "USDCHF", "japanese yen": "USDJPY",
    "british pound": "GBPUSD", "pound sterling": "GBPUSD", "cable": "GBPUSD", "euro": "EURUSD",
    "gold": "XAUUSD", "silver": "XAGUSD", "золото": "XAUUSD",
}  # fmt: skip
_NAMED = re.compile(r"\b(" + "|".join(sorted(map(re.escape, NAMED_INSTRUMENTS), key=len, reverse=True)) + r")\b", re.I)
CURRENCY_CODES = "USD|EUR|JPY|GBP|CHF|CAD|AUD|NZD|XAU|XAG|USDT|USDC|BTC|ETH"
# "XAU USD", "EUR / USD", "$OPEN /USDT": a base, spaces or a slash, and a quote currency.
_SPLIT_PAIR = re.compile(rf"(?<![\w/])(\$?[A-Za-z0-9]{{2,10}})\s*(?:/\s*|\s+)({CURRENCY_CODES})\b", re.I)
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-"})


def _named_instruments(text: str) -> str:
    text = _NAMED.sub(lambda found: NAMED_INSTRUMENTS[found.group().lower()], text.translate(_DASHES))
    return _SPLIT_PAIR.sub(_joined_pair, text)


def _joined_pair(found: re.Match[str]) -> str:
    base, quote = found.group(1), found.group(2)
    core = base.lstrip("$").upper()
    if core in SIDES or core in NOISE or _label(core) is not None or core in ORDER_TYPES or core.isdigit():
        return found.group()  # "BUY USD..." or "SL 20 USD": not a pair
    return f"{core}{quote.upper()}"


def _from_text(text: str) -> ParsedSignal:
    signal_id, text = _bot_command(text)
    if found := _DECIMAL_COMMA.search(text):
        point = found.group().replace(",", ".")
        raise InvalidSignal(f"the number {found.group()} has a decimal comma: write prices with a point ({point})")
    words = _words(_named_instruments(text))
    if "FILLED" in words and "ON" in words and "@" in words:
        return _strategy_default(words)
    signal = ParsedSignal(side=_side(words), symbol="", signal_id=signal_id)
    pending: str | None = None
    for index, word in enumerate(words):
        before = words[index - 1] if index > 0 else ""
        after = words[index + 1] if index + 1 < len(words) else ""
        pending = _read(signal, word, before, after, pending)
    if pending == "stop":
        raise InvalidSignal("the stop-loss has no price: write it as a number, e.g. SL 1.0800 or SL 20 pips")
    if not signal.symbol:
        raise InvalidSignal("no symbol found: name the instrument, e.g. EURUSD, EUR/USD or #GOLD")
    if signal.bare_numbers >= 2 and signal.stop_loss is None and signal.stop_loss_distance is None:
        raise InvalidSignal(
            f"the message gives a grid of {signal.bare_numbers + 1} entries and no stop-loss: send one entry "
            "with its stop-loss (SL ...)"
        )
    return signal


def _read(signal: ParsedSignal, word: str, before: str, after: str, pending: str | None) -> str | None:
    """Read one word into the signal; returns the label waiting for its number (or "took" after a
    take-profit, which a '/' continues, and "unit" after "0.10 lots", whose unit is skipped)."""
    if (word in ORDER_TYPES and word != "NOW") or (word == "NOW" and signal.order_type is None):
        signal.order_type = ORDER_TYPES[word]
    elif word == "STOP" and SIDES.get(before) is not None:
        if SIDES[before] != "close":  # "EXIT STOP EURUSD" closes; a close has no stop order
            signal.order_type = "stop"  # "BUY STOP EURUSD 1.0900": an order that waits for the price to rise
    elif pending == "unit" and word in QUANTITY_UNITS:
        return None
    elif word == "/":
        return "take" if pending == "took" else pending  # "TP 2035/2030", "TP: 43000 / 44000"
    elif (label := _label(word)) is not None:
        return _read_label(label, word, pending)
    elif pending in ("take", "stop") and word in ORDINALS and _is_number(after):
        pass  # "TP 1: 2020", "Take profit 2: 2025": the number of the level, not its price
    elif _is_number(word):
        return _read_number(signal, word, before, after, pending)
    else:
        if word not in SIDES and word not in NOISE and not signal.symbol and _looks_like_symbol(word):
            signal.symbol = normalise_symbol(word)
        # A list ends at another word, and so does the wait for a value that is not the order's.
        return None if pending in ("takes", "took", "unit", "ignored") else pending
    return pending


def _read_label(label: str, word: str, pending: str | None) -> str | None:
    if pending == "stop" and label != "entry":
        raise InvalidSignal(f"the stop-loss has no price before {word}: write it as a number, e.g. SL 1.0800")
    if label == "entry" and pending in ("stop", "take", "takes", "quantity"):  # "sl@14950"
        return pending
    return label


def _read_number(signal: ParsedSignal, word: str, before: str, after: str, pending: str | None) -> str | None:
    if after in QUANTITY_UNITS and pending not in ("stop", "take", "takes", "entry"):
        signal.quantity = _number(word, "quantity")  # "0.10 lots", "100 shares"
        return "unit"
    if (
        pending is None
        and not signal.symbol
        and before in SIDES
        and _looks_like_symbol(after)
        and _is_plain_word(after)
    ):
        signal.quantity = _number(word, "quantity")  # "BUY 100 AAPL": how many of what follows
        return None
    if pending == "took":
        _add_take(signal, word)  # "TP 1.0800 1.0750": the label's list goes on
        return "took"
    _assign(signal, pending if pending != "unit" else None, word)
    return {"takes": "takes", "take": "took"}.get(pending or "")


def _side(words: list[str]) -> str:
    """The one side the words name. "Exit long", "close short" and "long exit" close a position."""
    sides = {SIDES[t] for t in words if t in SIDES}
    if len(sides) == 2 and "close" in sides:
        closes = [i for i, word in enumerate(words) if SIDES.get(word) == "close"]
        others = [i for i, word in enumerate(words) if SIDES.get(word) in ("buy", "sell")]
        if all(any(abs(i - c) == 1 for c in closes) for i in others):
            return "close"
    if len(sides) != 1:
        found = "none" if not sides else " and ".join(sorted(sides))
        several = " (send one signal per message)" if len(sides) > 1 else ""
        raise InvalidSignal(f"a signal needs exactly one side (buy, sell or close); found {found}{several}")
    return sides.pop()


def _looks_like_symbol(word: str) -> bool:
    core = word.lstrip("#$")
    return 2 <= len(core) <= 24 and any(ch.isalpha() for ch in core) and core[0] not in "-+"


def _assign(signal: ParsedSignal, label: str | None, word: str) -> None:
    if label == "stop":
        _set_stop(signal, word)
    elif label in ("take", "takes"):
        _add_take(signal, word)
    elif label == "quantity":
        signal.quantity = _number(word, "quantity")
    elif label == "ignored":
        return
    elif label == "entry" or signal.entry is None:
        entry = _number(_split_unit(word)[0], "entry")
        if label == "entry" and signal.entry is not None and entry != signal.entry:
            raise InvalidSignal(f"the message gives two different entries, {signal.entry} and {entry}: give one")
        signal.entry = entry
    else:
        # A second bare number after the entry is the other end of an entry zone ("2015 2018"); more
        # than that is a grid of entries (refused without a stop-loss).
        signal.bare_numbers += 1


def _strategy_default(words: list[str]) -> ParsedSignal:
    """``<name>: order buy @ 2 filled on ES1!. New strategy position is 0``: '@' gives contracts here."""
    sides = [SIDES[t] for t in words if t in ("BUY", "SELL")]
    at = words.index("@")
    on = len(words) - 1 - words[::-1].index("ON")
    if not sides or at + 1 >= len(words) or on + 1 >= len(words):
        raise InvalidSignal("a strategy alert needs 'order buy|sell @ N filled on TICKER'")
    signal = ParsedSignal(side=sides[0], symbol=normalise_symbol(words[on + 1]), format="tradingview_strategy")
    signal.quantity = _number(words[at + 1], "contracts")
    if "IS" in words and words[-1] in ("0", "0.0"):
        signal.side = "close"  # the new strategy position is flat: this order closed it
    return signal


MAX_TAKE_PROFITS = 10  # each is a leg order; chat signals rarely give more than five


def _check(signal: ParsedSignal, max_level_distance_pct: float = MAX_LEVEL_DISTANCE_PCT) -> None:
    targets = len(signal.take_profit) + len(signal.take_profit_distances)
    if targets > MAX_TAKE_PROFITS:
        raise InvalidSignal(f"the signal has {targets} take-profit levels; at most {MAX_TAKE_PROFITS} are taken")
    if signal.order_type == "stop" and signal.entry is None:
        raise InvalidSignal(f"a {signal.side} stop order needs the price that triggers it, e.g. @ 1.0900")
    if signal.side == "close" or signal.entry is None:
        return
    below, above = ("stop-loss", "take-profit") if signal.side == "buy" else ("take-profit", "stop-loss")
    lows = [signal.stop_loss] if signal.side == "buy" else signal.take_profit
    highs = signal.take_profit if signal.side == "buy" else [signal.stop_loss]
    for level in lows:
        if level is not None and level >= signal.entry:
            raise InvalidSignal(f"for a {signal.side} at {signal.entry}, the {below} {level} must be below the entry")
    for level in highs:
        if level is not None and level <= signal.entry:
            raise InvalidSignal(f"for a {signal.side} at {signal.entry}, the {above} {level} must be above the entry")
    for name, level in (("stop-loss", signal.stop_loss), *(("take-profit", tp) for tp in signal.take_profit)):
        if level is not None and abs(level / signal.entry - 1) * 100 > Decimal(repr(max_level_distance_pct)):
            away = abs(level / signal.entry - 1) * 100
            raise InvalidSignal(
                f"the {name} {level} is {away:.0f}% from the entry {signal.entry}, more than "
                f"{max_level_distance_pct:g}% (QUANTDESK_SIGNAL_MAX_LEVEL_DISTANCE_PCT): check the level for a typo"
            )
