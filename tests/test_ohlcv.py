"""OHLCV CSV loading: built-in files, time formats, adj-close scaling, and every refusal."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datamodules.market.ohlcv import (
    BUILTIN_DATASETS,
    load_ohlcv,
    read_timestamps,
    resolve_source,
)
from modules.errors import DataError

COLUMNS = ["open", "high", "low", "close", "volume"]
HEADER = "Date,Open,High,Low,Close,Volume"
GOOD = [
    "2020-01-01,10,11,9,10.5,100",
    "2020-01-02,10.5,12,10,11,200",
    "2020-01-03,11,11.5,10.5,11.2,0",
    "2020-01-06,11.2,11.8,11,11.6,150",
]


def write(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def raises(path: Path, problem: str):
    """Expect a DataError whose message starts with the file path and names the problem."""
    return pytest.raises(DataError, match=rf"^{re.escape(str(path))}: .*{problem}")


def test_builtin_googl_loads():
    path = resolve_source("GOOGL")
    assert path.name == BUILTIN_DATASETS["googl"] and path.is_file()
    df = load_ohlcv(path)
    assert len(df) == 2335 and list(df.columns) == COLUMNS
    assert df.index.name == "time" and df.index[0] == pd.Timestamp("2009-05-22")
    assert (df.dtypes == np.float64).all()
    assert df.index.equals(read_timestamps(path))


def test_builtin_eurusd_is_parsed_day_first():
    path = resolve_source("eurusd")
    times = read_timestamps(path)
    assert len(times) == 6225
    assert times[0] == pd.Timestamp("2017-01-01 22:00")
    assert times[1] == pd.Timestamp("2017-01-01 23:00")
    assert times[2] == pd.Timestamp("2017-01-02 00:00")  # "02.01.2017": month-first gives Feb 1
    assert times[-1] == pd.Timestamp("2017-12-29 21:00")
    df = load_ohlcv(path, 6000)
    assert len(df) == 225 and df.index.equals(times[6000:])


def test_resolve_source_path_and_missing(tmp_path):
    path = write(tmp_path, GOOD)
    assert resolve_source(str(path)) == path
    with pytest.raises(DataError, match=r"nope\.csv: no such file.*built-in"):
        resolve_source(tmp_path / "nope.csv")


def test_unix_seconds_and_milliseconds(tmp_path):
    secs = write(tmp_path, ["1577836800,1,2,0.5,1.5,10", "1577923200,1.5,2,1,1.2,10"], name="s.csv")
    ms = write(tmp_path, ["1577836800000,1,2,0.5,1.5,10"], "Timestamp,Open,High,Low,Close,Volume")
    assert list(load_ohlcv(secs).index) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-02")]
    assert load_ohlcv(ms).index[0] == pd.Timestamp("2020-01-01")


def test_column_names_are_case_and_space_tolerant(tmp_path):
    header = " timestamp , OPEN,high ,Low,close,Adj_Close,VOLUME"
    rows = ["2020-01-01T10:00:00+02:00,1,2,0.5,1.5,1.5,10"]
    df = load_ohlcv(write(tmp_path, rows, header))
    assert list(df.columns) == COLUMNS
    assert df.index[0] == pd.Timestamp("2020-01-01 08:00")  # tz-aware -> UTC naive


def test_adj_close_scales_the_whole_bar(tmp_path):
    header = "Date,Open,High,Low,Close,Adj Close,Volume"
    rows = ["2020-01-01,10,12,8,11,5.5,100", "2020-01-02,11,11,11,11,11,100"]
    df = load_ohlcv(write(tmp_path, rows, header))
    assert df.iloc[0].tolist() == pytest.approx([5.0, 6.0, 4.0, 5.5, 100.0])  # factor 0.5
    assert df.iloc[1].tolist() == [11.0, 11.0, 11.0, 11.0, 100.0]


def test_stop_row_ignores_garbage_after_it(tmp_path):
    garbage = ["abc,abc,-1,-5,xyz,-3", "2019-01-01,-1,-1,-1,-1,-1"]
    path = write(tmp_path, GOOD + garbage)
    df = load_ohlcv(path, 0, len(GOOD))
    assert len(df) == 4 and df["close"].iloc[-1] == 11.6
    assert len(load_ohlcv(path, 1, 3)) == 2
    with raises(path, "at row 5"):
        load_ohlcv(path)


def test_blank_lines_at_the_end_are_not_rows_but_inside_they_are(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("\n".join([HEADER, *GOOD]) + "\n\n\n")
    assert len(read_timestamps(path)) == len(GOOD) == len(load_ohlcv(path))
    inside = tmp_path / "inside.csv"
    inside.write_text("\n".join([HEADER, *GOOD[:2], "", *GOOD[2:]]) + "\n")
    with raises(inside, "unparseable timestamp in column 'Date' at row 3"):
        read_timestamps(inside)


def test_start_row_skips_garbage_before_it(tmp_path):
    path = write(tmp_path, ["junk,x,y,z,w,v", *GOOD])
    df = load_ohlcv(path, 1)
    assert df.index[0] == pd.Timestamp("2020-01-01") and len(df) == 4


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (
            "2020-01-07,11,abc,10,11,5",
            r"non-numeric value in column 'high' at row 5 .*2020-01-07.*'abc'",
        ),
        ("2020-01-07,11,12,,11,5", r"empty cell in column 'low' at row 5"),
        ("2020-01-07,nan,12,10,11,5", r"NaN or inf in column 'open' at row 5"),
        ("2020-01-07,11,inf,10,11,5", r"NaN or inf in column 'high' at row 5"),
        ("2020-01-07,11,12,10,0,5", r"non-positive price in column 'close' at row 5 .*close=0"),
        ("2020-01-07,-1,12,10,11,5", r"non-positive price in column 'open' at row 5"),
        ("2020-01-07,11,12,10,11,-5", r"negative volume in column 'volume' at row 5 .*volume=-5"),
        ("2020-01-07,11,10,12,11,5", r"column 'high' below column 'low' at row 5"),
        ("2020-01-07,11,12,10,13,5", r"column 'high' below max\(open, close\) at row 5"),
        ("2020-01-07,9,12,10,11,5", r"column 'low' above min\(open, close\) at row 5"),
        ("2020-01-03,11,12,10,11,5", r"timestamp out of order in column 'time' at row 5"),
        ("2020-01-06,11,12,10,11,5", r"duplicate timestamp in column 'time' at row 5"),
        (
            "2020-13-45,11,12,10,11,5",
            r"unparseable timestamp in column 'Date' at row 5.*2020-13-45",
        ),
    ],
)
def test_bad_rows_are_refused_with_row_and_file(tmp_path, row, problem):
    path = write(tmp_path, [*GOOD, row])
    with raises(path, problem):
        load_ohlcv(path)
    assert len(load_ohlcv(path, 0, 4)) == 4  # the bad row is outside the range


def test_tolerance_allows_rounding(tmp_path):
    path = write(tmp_path, ["2020-01-01,10,9.99999999999,9,10,1"])
    assert len(load_ohlcv(path)) == 1


def test_missing_columns_listed(tmp_path):
    path = write(tmp_path, ["2020-01-01,1,2,0.5,1.5"], "Date,Open,High,Low,Close")
    with raises(path, r"missing required column\(s\) volume; found columns 'Date', 'Open'"):
        load_ohlcv(path)
    path = write(tmp_path, ["1,2,0.5,1.5,3"], "When,Open,High,Low,Close,Volume", "nt.csv")
    with raises(path, r"missing required column\(s\) time"):
        read_timestamps(path)


def test_empty_file_and_empty_range(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with raises(empty, "file is empty"):
        load_ohlcv(empty)
    header_only = write(tmp_path, [], name="h.csv")
    with raises(header_only, "no data rows"):
        read_timestamps(header_only)
    path = write(tmp_path, GOOD)
    with raises(path, r"no data rows in range \[10, None\)"):
        load_ohlcv(path, 10)
    with raises(path, r"file ends after 4 data rows"):
        load_ohlcv(path, 2, 6)


def test_read_timestamps_only_reads_time_and_checks_order(tmp_path):
    rows = ["01.02.2017 00:00:00.000,x", "02.02.2017 00:00:00.000,y"]
    times = read_timestamps(write(tmp_path, rows, "Gmt Time,anything"))
    assert list(times) == [pd.Timestamp("2017-02-01"), pd.Timestamp("2017-02-02")]
    dup = write(tmp_path, ["2020-01-01,x", "2020-01-02,y", "2020-01-02,z"], "date,a", "d.csv")
    with raises(dup, r"duplicate timestamp .* at row 3 .*2020-01-02 00:00:00 follows .*\(row 2\)"):
        read_timestamps(dup)
    unsorted = write(tmp_path, ["2020-01-02,x", "2020-01-01,y"], "date,a", "u.csv")
    with raises(unsorted, r"timestamp out of order .* at row 2"):
        read_timestamps(unsorted)
