"""CSV layouts as real exports write them, and the ways real files go wrong."""

import numpy as np
import pytest

from quantdesk.core.errors import UnsupportedMediaType, ValidationFailed
from quantdesk.market.bars import format_ts
from quantdesk.market.csv_formats import adjust_for_interval, parse_csv
from quantdesk.market.intervals import Interval, infer_interval

YAHOO = b"""Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,187.149994,188.440002,183.889999,185.639999,184.938217,82488700
2024-01-03,184.220001,185.880005,183.429993,184.250000,183.553467,58414500
2024-01-04,182.149994,183.089996,180.880005,181.910004,181.222336,71983600
2024-01-05,181.990005,182.759995,180.169998,181.179993,180.495071,62303300
2024-01-08,null,null,null,null,null,null
2024-01-09,183.919998,185.149994,182.729996,185.139999,184.440201,42841800
"""
YFINANCE_INTRADAY = b"""Datetime,Open,High,Low,Close,Volume,Dividends,Stock Splits
2024-03-08 09:30:00-05:00,169.0,170.0,168.5,169.5,1000,0.0,0.0
2024-03-08 09:45:00-05:00,169.5,169.9,169.1,169.2,900,0.0,0.0
2024-03-11 09:30:00-04:00,171.0,171.5,170.5,171.2,800,0.0,0.0
"""
STOOQ_DAILY = b"""Date,Open,High,Low,Close,Volume
2024-01-02,187.15,188.44,183.885,185.64,82488700
2024-01-03,184.22,185.88,183.43,184.25,58414500
"""
STOOQ_BULK = b"""<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>
AAPL.US,5,20240102,153000,187.15,187.6,186.9,187.2,1200,0
AAPL.US,5,20240102,153500,187.2,187.4,187.0,187.1,1100,0
"""
STOOQ_WEEKLY = b"""Date,Open,High,Low,Close,Volume
2024-01-05,187.15,188.44,180.17,181.18,275190000
2024-01-12,181.99,187.05,181.50,185.92,251000000
"""
BINANCE = b"""\
1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,53957248.973789,47134,682.57581,28957416.819645,0
1704070800000,42475.23,42775.00,42431.65,42613.56,1196.37856,1704074399999,50984893.959198,44593,629.64244,26831734.052011,0
"""
BINANCE_MICROS = b"""\
1735689600000000,93576.00,94509.42,93489.03,94401.14,755.99010,1735693199999999,71099587.16,133440,394.51,37106813.86,0
1735693200000000,94401.13,94408.00,93578.77,93607.74,450.13212,1735696799999999,42266428.60,103113,184.56,17330467.94,0
"""
BINANCE_HEADER = (
    b"open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n"
    + b"""\
1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,53957248.97,47134,682.57,28957416.81,0
1704070800000,42475.23,42775.00,42431.65,42613.56,1196.37856,1704074399999,50984893.95,44593,629.64,26831734.05,0
"""
)


def timestamps(data: bytes) -> list[str]:
    return [format_ts(int(t)) for t in parse_csv(data).bars.ts]


def test_yahoo_export_is_detected_and_null_rows_skipped():
    parsed = parse_csv(YAHOO)
    assert parsed.format == "yahoo"
    assert len(parsed.bars) == 5
    assert parsed.bars.close[0] == pytest.approx(185.639999)
    assert parsed.bars.volume[0] == 82488700
    assert parsed.rows.tolist() == [1, 2, 3, 4, 6]  # row 5 was Yahoo's null row
    assert any("skipped 1 row" in note for note in parsed.notes)
    assert infer_interval(parsed.bars.ts) is Interval.d1


def test_yfinance_intraday_offsets_across_a_dst_change_become_utc():
    assert timestamps(YFINANCE_INTRADAY) == [
        "2024-03-08T14:30:00Z",
        "2024-03-08T14:45:00Z",
        "2024-03-11T13:30:00Z",
    ]
    assert parse_csv(YFINANCE_INTRADAY).format == "yahoo"


def test_stooq_daily_and_bulk_layouts():
    assert parse_csv(STOOQ_DAILY).format == "stooq"
    bulk = parse_csv(STOOQ_BULK)
    assert bulk.format == "stooq"
    assert timestamps(STOOQ_BULK) == ["2024-01-02T15:30:00Z", "2024-01-02T15:35:00Z"]
    assert infer_interval(bulk.bars.ts) is Interval.m5


def test_stooq_weeks_labelled_by_friday_are_stored_at_monday():
    parsed = adjust_for_interval(parse_csv(STOOQ_WEEKLY), Interval.w1)
    assert [format_ts(int(t)) for t in parsed.bars.ts] == ["2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"]
    assert any("Monday" in note for note in parsed.notes)


@pytest.mark.parametrize("data", [BINANCE, BINANCE_MICROS, BINANCE_HEADER])
def test_binance_klines_with_milliseconds_microseconds_or_a_header(data):
    parsed = parse_csv(data)
    assert parsed.format == "binance"
    assert infer_interval(parsed.bars.ts) is Interval.h1
    assert parsed.bars.ts[0] % 3_600_000_000 == 0


def test_binance_keeps_base_volume_not_quote_volume():
    assert parse_csv(BINANCE).bars.volume[0] == pytest.approx(1271.68108)


def test_plain_layout_with_semicolons_bom_and_odd_header_case():
    data = "\ufeffTimestamp ; OPEN;High;low;Close;Volume\n2024-01-01T00:00:00Z;1;2;0.5;1.5;10\n".encode()
    parsed = parse_csv(data)
    assert parsed.format == "plain"
    assert parsed.bars.high.tolist() == [2.0]


def test_epoch_seconds_and_naive_iso_are_utc():
    seconds = b"timestamp,open,high,low,close,volume\n1704067200,1,2,0.5,1.5,10\n"
    naive = b"timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n"
    assert timestamps(seconds) == timestamps(naive) == ["2024-01-01T00:00:00Z"]


def test_missing_volume_column_is_stored_as_zero_with_a_note():
    parsed = parse_csv(b"Date,Open,High,Low,Close\n2024-01-02,1.1,1.2,1.0,1.15\n")
    assert parsed.bars.volume.tolist() == [0.0]
    assert any("no volume column" in note for note in parsed.notes)


def test_missing_price_column_says_what_is_needed():
    with pytest.raises(ValidationFailed, match=r"missing column\(s\): close; found timestamp, open, high, low, volume"):
        parse_csv(b"timestamp,open,high,low,volume\n2024-01-01,1,2,0.5,10\n")


def test_unknown_extra_column_is_refused():
    with pytest.raises(ValidationFailed, match=r"unexpected column\(s\): sentiment"):
        parse_csv(b"timestamp,open,high,low,close,volume,sentiment\n2024-01-01,1,2,0.5,1.5,10,up\n")


def test_a_row_with_extra_fields_names_its_line():
    with pytest.raises(ValidationFailed, match="Expected 6 fields in line 3, saw 7"):
        parse_csv(b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.5,10,9\n")


def test_unparseable_numbers_and_dates_are_listed_with_line_numbers():
    data = b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-13-45,1,abc,0.5,1.5,10\n"
    with pytest.raises(ValidationFailed) as caught:
        parse_csv(data)
    assert caught.value.errors == [
        {"row": 2, "line": 3, "field": "timestamp", "reason": caught.value.errors[0]["reason"]},
        {"row": 2, "line": 3, "field": "high", "reason": "high 'abc' is not a number"},
    ]
    assert "'2024-13-45' is not a date" in caught.value.errors[0]["reason"]


def test_a_short_row_reports_its_empty_cells():
    with pytest.raises(ValidationFailed) as caught:
        parse_csv(b"timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5\n")
    assert {"row": 1, "line": 2, "field": "close", "reason": "close '(empty)' is not a number"} in caught.value.errors


def test_mixed_naive_and_zoned_timestamps_are_refused():
    data = (
        b"timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n2024-01-02T00:00:00,1,2,0.5,1.5,1\n"
    )
    with pytest.raises(ValidationFailed, match="mix time zones") as caught:
        parse_csv(data)
    assert caught.value.errors[0]["row"] == 2


@pytest.mark.parametrize("data", [b"", b"  \n\n"])
def test_empty_file(data):
    with pytest.raises(ValidationFailed, match="the file is empty"):
        parse_csv(data)


def test_header_only_file():
    with pytest.raises(ValidationFailed, match="no data rows"):
        parse_csv(b"timestamp,open,high,low,close,volume\n")


def test_binary_file_is_unsupported_media():
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(UnsupportedMediaType, match="binary"):
        parse_csv(png)


def test_non_utf8_text_is_unsupported_media():
    with pytest.raises(UnsupportedMediaType, match="not UTF-8"):
        parse_csv("timestamp,open,high,low,close\n2024-01-01,1,2,0.5,1.5 \xe9\n".encode("latin-1"))


def test_headerless_file_of_the_wrong_width_asks_for_a_header():
    with pytest.raises(ValidationFailed, match="add a header line"):
        parse_csv(b"1704067200000,1,2,0.5,1.5,10,3,4\n")


def test_nan_prices_parse_and_are_left_for_the_bar_checks():
    parsed = parse_csv(b"timestamp,open,high,low,close,volume\n2024-01-01,NaN,2,0.5,1.5,10\n")
    assert np.isnan(parsed.bars.open[0])


YFINANCE_DOWNLOAD = b"""Price,Close,High,Low,Open,Volume
Ticker,AAPL,AAPL,AAPL,AAPL,AAPL
Date,,,,,
2024-01-02,184.53,187.32,182.73,185.79,82488700
2024-01-03,183.15,184.77,182.35,183.20,58414500
"""
YFINANCE_HISTORY_DAILY = b"""Date,Open,High,Low,Close,Volume,Dividends,Stock Splits
2024-01-02 00:00:00-05:00,185.79,187.32,182.73,184.53,82488700,0.0,0.0
2024-01-03 00:00:00-05:00,183.20,184.77,182.35,183.15,58414500,0.0,0.0
2024-03-11 00:00:00-04:00,171.0,171.5,170.5,171.2,800,0.0,0.0
"""
STOOQ_WEB_INTRADAY = b"""Date,Time,Open,High,Low,Close,Volume
2024-01-02,15:30:00,187.15,187.6,186.9,187.2,1200
2024-01-02,15:35:00,187.2,187.4,187.0,187.1,1100
"""
METATRADER = (
    b"<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    b"2024.01.02\t00:00:00\t1.10427\t1.10452\t1.09395\t1.09417\t96781\t0\t0\n"
    b"2024.01.03\t00:00:00\t1.09417\t1.09522\t1.08918\t1.09215\t95202\t0\t0\n"
)


def test_yfinance_download_three_line_header():
    parsed = parse_csv(YFINANCE_DOWNLOAD)
    assert parsed.format == "yahoo"
    assert [format_ts(int(t)) for t in parsed.bars.ts] == ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]
    assert parsed.bars.open[0] == 185.79  # columns follow the header's order, not Yahoo's usual one
    assert parsed.bars.close[0] == 184.53
    assert parsed.header_lines == 3  # so file lines in errors stay right


def test_yfinance_daily_history_at_local_midnight_keeps_the_trading_date():
    parsed = parse_csv(YFINANCE_HISTORY_DAILY)
    assert timestamps(YFINANCE_HISTORY_DAILY) == [
        "2024-01-02T00:00:00Z",
        "2024-01-03T00:00:00Z",
        "2024-03-11T00:00:00Z",
    ]
    assert any("local midnights" in note for note in parsed.notes)


def test_intraday_local_times_are_still_converted_to_utc():
    assert timestamps(YFINANCE_INTRADAY)[0] == "2024-03-08T14:30:00Z"


def test_separate_date_and_time_columns():
    assert timestamps(STOOQ_WEB_INTRADAY) == ["2024-01-02T15:30:00Z", "2024-01-02T15:35:00Z"]


def test_metatrader_export_uses_tick_volume_when_real_volume_is_zero():
    parsed = parse_csv(METATRADER)
    assert parsed.format == "metatrader"
    assert timestamps(METATRADER) == ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]
    assert parsed.bars.volume.tolist() == [96781.0, 95202.0]
    assert any("tick volume" in note for note in parsed.notes)


def test_a_trailing_delimiter_on_every_line_is_harmless():
    parsed = parse_csv(b"Date,Open,High,Low,Close,Volume,\n2024-01-02,1,2,0.5,1.5,10,\n2024-01-03,1,2,0.5,1.5,10,\n")
    assert len(parsed.bars) == 2
    assert parsed.bars.volume.tolist() == [10.0, 10.0]
