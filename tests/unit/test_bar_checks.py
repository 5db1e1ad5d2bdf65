import numpy as np
import pytest

from quantdesk.core.errors import ValidationFailed
from quantdesk.market.bars import MAX_REPORTED_PROBLEMS, BarArrays, find_problems, format_ts
from quantdesk.market.intervals import DAY_US, Interval
from tests.factories import make_bars

DAY0 = 19723 * DAY_US


def one_bar(o=10.0, h=12.0, lo=9.0, c=11.0, v=100.0, ts=DAY0) -> BarArrays:
    return BarArrays.from_columns(ts=[ts], open=[o], high=[h], low=[lo], close=[c], volume=[v])


def reasons(bars: BarArrays, interval: Interval = Interval.d1) -> list[str]:
    return [p.reason for p in find_problems(bars, interval).items]


def test_generated_bars_pass_every_check():
    assert not find_problems(make_bars(500), Interval.d1)


@pytest.mark.parametrize(
    ("bar", "expected"),
    [
        (one_bar(o=0.0), "open must be a positive finite number, got 0"),
        (one_bar(c=float("nan")), "close must be a positive finite number, got nan"),
        (one_bar(h=float("inf")), "high must be a positive finite number, got inf"),
        (one_bar(h=8.0, lo=9.0, o=8.5, c=8.5), "high 8 is below low 9"),
        (one_bar(o=13.0), "open 13 is outside the bar's range low 9 .. high 12"),
        (one_bar(c=8.0), "close 8 is outside the bar's range low 9 .. high 12"),
        (one_bar(v=-1.0), "volume must be a finite number >= 0, got -1"),
        (one_bar(ts=DAY0 + 60_000_000), "2024-01-01T00:01:00Z is not aligned to 1d: daily bars start at 00:00 UTC"),
    ],
)
def test_each_bad_bar_is_named_with_its_reason(bar, expected):
    assert expected in reasons(bar)


def test_duplicate_timestamps_point_back_to_the_first_row():
    bars = make_bars(3)
    dup = BarArrays.from_columns(
        **{
            n: np.concatenate((c, c[1:2]))
            for n, c in zip(("ts", "open", "high", "low", "close", "volume"), bars.columns(), strict=True)
        }
    )
    problems = find_problems(dup, Interval.d1)
    assert [(p.row, p.reason) for p in problems.items] == [
        (4, "duplicate timestamp 2024-01-02T00:00:00Z, first seen in row 2")
    ]


def test_all_problems_are_counted_but_only_the_first_hundred_listed():
    bars = make_bars(250)
    broken = BarArrays(bars.ts, bars.open, bars.low * 0.5, bars.low, bars.close, bars.volume)
    problems = find_problems(broken, Interval.d1)
    with pytest.raises(ValidationFailed) as caught:
        problems.raise_if_any(header_lines=1)
    assert caught.value.detail.startswith(f"{problems.total} problem(s)")
    assert len(caught.value.errors) == MAX_REPORTED_PROBLEMS
    first = caught.value.errors[0]
    assert first["row"] == 1
    assert first["line"] == 2
    assert first["field"] == "high"


def test_format_ts_is_iso_utc():
    assert format_ts(DAY0) == "2024-01-01T00:00:00Z"
    assert format_ts(DAY0 + 1) == "2024-01-01T00:00:00.000001Z"
