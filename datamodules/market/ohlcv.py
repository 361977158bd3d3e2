"""Load OHLCV bars from CSV files and refuse bad ones with a message a user can act on.

One bad bar (a zero price, a swapped High/Low, a duplicated hour) silently turns into an
infinite return or a look-ahead in the trading env, so every check raises `DataError` naming
the file, the problem, the column, the row and its timestamp. "row N" is the N-th data row
with the header not counted; the message also gives the file line (N + 1).

Rows are addressed by 0-based data row ranges so that a split can load its train rows
without the test rows' prices ever being parsed (`load_ohlcv(path, start_row, stop_row)`).
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import numpy as np
import pandas as pd

from modules.errors import DataError

BUILTIN_DATASETS: dict[str, str] = {
    "googl": "STOCKS_GOOGL.csv",
    "eurusd": "FOREX_EURUSD_1H_ASK.csv",
}
COLUMNS = ("open", "high", "low", "close", "volume")
_TIME_NAMES = {"date", "time", "timestamp", "datetime", "gmttime"}
_REL_TOL = 1e-9  # CSV rounding and adj-close scaling may nudge an equal High/Open apart
_DAY_FIRST = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})(?=$|[ T])")  # 01.01.2017 22:00:00.000


def resolve_source(source: str | Path) -> Path:
    """Map a built-in name (googl, eurusd) to the file shipped in gym_anytrading, else a path.

    The built-in files come from the installed package so runs work offline and reproducibly.
    """
    name = str(source).strip().lower()
    if name in BUILTIN_DATASETS:
        data = importlib.resources.files("gym_anytrading") / "datasets" / "data"
        return Path(str(data / BUILTIN_DATASETS[name]))
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(
            f"{path}: no such file, and not a built-in dataset (googl, eurusd, synthetic)"
        )
    return path


def read_timestamps(path: Path) -> pd.DatetimeIndex:
    """Parse only the time column, so splits can be planned without loading any prices."""
    time_col = _columns(path, ("time",))["time"]
    raw = _read(path, usecols=[time_col])
    if raw.empty:
        raise DataError(f"{path}: no data rows (only a header)")
    times = _parse_times(raw[time_col], path, time_col, first_row=0)
    _check_increasing(times, path, first_row=0)
    return times


def load_ohlcv(path: Path, start_row: int = 0, stop_row: int | None = None) -> pd.DataFrame:
    """Load data rows [start_row, stop_row) as float64 open, high, low, close, volume.

    Rows outside the range are skipped by the CSV reader itself (`skiprows`/`nrows`), never
    converted or validated, so a test period stays unseen while a model trains.

    If an "Adj Close" column is present, open/high/low/close are multiplied by
    adj_close / close. Yahoo's Close is adjusted for splits only, Adj Close also for dividends;
    rescaling the whole bar keeps returns free of artificial drops on ex-dividend days while
    keeping High/Low consistent with Close. Where the two are equal the factor is exactly 1.
    Volume is left as is (Yahoo already reports it split-adjusted).
    """
    if start_row < 0 or (stop_row is not None and stop_row < start_row):
        raise ValueError(f"bad row range [{start_row}, {stop_row})")
    cols = _columns(path, ("time", *COLUMNS))
    wanted = ["time", *COLUMNS] + (["adjclose"] if "adjclose" in cols else [])
    nrows = None if stop_row is None else stop_row - start_row
    raw = _read(
        path, usecols=[cols[c] for c in wanted], skiprows=range(1, start_row + 1), nrows=nrows
    )
    if raw.empty:
        raise DataError(f"{path}: no data rows in range [{start_row}, {stop_row})")
    if nrows is not None and len(raw) < nrows:
        raise DataError(
            f"{path}: asked for rows [{start_row}, {stop_row}) but the file ends after "
            f"{start_row + len(raw)} data rows"
        )
    times = _parse_times(raw[cols["time"]], path, cols["time"], start_row)
    v = {c: _numeric(raw[cols[c]], path, c, start_row, times) for c in wanted[1:]}

    def check(bad: np.ndarray, problem: str, *shown: str) -> None:
        detail = lambda i: ", ".join(f"{c}={v[c][i]:g}" for c in shown)  # noqa: E731
        _raise_first(bad, path, problem, start_row, times, detail)

    for k in ("open", "high", "low", "close", "adjclose"):
        if k in v:
            check(v[k] <= 0, f"non-positive price in column '{k}'", k)
    check(v["volume"] < 0, "negative volume in column 'volume'", "volume")
    o, h, lo, c = v["open"], v["high"], v["low"], v["close"]
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    check(lo - h > _REL_TOL * lo, "column 'high' below column 'low'", "high", "low")
    check(top - h > _REL_TOL * top, "column 'high' below max(open, close)", "open", "high", "close")
    check(
        lo - bottom > _REL_TOL * bottom,
        "column 'low' above min(open, close)",
        "open",
        "low",
        "close",
    )
    _check_increasing(times, path, start_row)

    if "adjclose" in v:
        for k in ("open", "high", "low", "close"):
            v[k] = v[k] * (v["adjclose"] / c)
    return pd.DataFrame({k: v[k] for k in COLUMNS}, index=times)


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).lower())


def _columns(path: Path, required: tuple[str, ...]) -> dict[str, str]:
    """Map canonical names (time, open, ..., adjclose) to the file's own column names."""
    found: dict[str, str] = {}
    for name in _read(path, nrows=0).columns:
        key = "time" if _key(name) in _TIME_NAMES else _key(name)
        if key in found:
            raise DataError(f"{path}: columns {found[key]!r} and {name!r} both read as '{key}'")
        found[key] = name
    missing = [c for c in required if c not in found]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; found columns "
            f"{', '.join(repr(c) for c in found.values())} (the time column may be named "
            "date, time, timestamp, datetime or gmt time)"
        )
    return found


def _read(path: Path, **kwargs) -> pd.DataFrame:
    # Everything is read as text so a bad cell can be quoted back verbatim. Blank lines are
    # kept as (empty) rows so that "row N" always means file line N + 1, as skiprows counts;
    # blank lines at the very end of the file are not rows (editors leave them).
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, skip_blank_lines=False, **kwargs
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty (expected a header row and data rows)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read as CSV: {err}") from None
    filled = (frame != "").any(axis=1).to_numpy()
    last = len(filled) - int(filled[::-1].argmax()) if filled.any() else 0
    return frame.iloc[:last]


def _raise_first(bad, path: Path, problem: str, first_row: int, times, detail) -> None:
    """Raise "<file>: <problem> at row N (line N+1, <timestamp>): <detail>" for the first bad row."""
    bad = np.asarray(bad)
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    row = first_row + i + 1
    where = f"line {row + 1}" + ("" if times is None else f", {times[i]}")
    more = f" (and {bad.sum() - 1} more rows)" if bad.sum() > 1 else ""
    raise DataError(f"{path}: {problem} at row {row} ({where}): {detail(i)}{more}")


def _parse_times(raw: pd.Series, path: Path, col: str, first_row: int) -> pd.DatetimeIndex:
    """Parse ISO, dd.mm.yyyy (rewritten to ISO, so never read month-first) or unix epochs."""
    text = raw.str.strip()
    try:
        if text.str.fullmatch(r"[+-]?\d+").all():
            # Epoch seconds below 1e11 reach year 5138; larger values can only be milliseconds.
            ints = text.astype(np.int64).to_numpy()
            ms = np.where(np.abs(ints) > 1e11, ints, ints * 1000)
            times = pd.Series(pd.to_datetime(ms, unit="ms"))
        else:
            iso = text.str.replace(_DAY_FIRST, r"\3-\2-\1", regex=True)
            times = pd.to_datetime(iso, format="ISO8601", utc=True, errors="coerce")
            times = times.dt.tz_convert(None)
        # One resolution everywhere, so .asi8 and torch conversions always mean nanoseconds.
        times = pd.DatetimeIndex(times, name="time").as_unit("ns")
    except (ValueError, OverflowError) as err:
        raise DataError(f"{path}: timestamps in column '{col}' out of range: {err}") from None
    hint = " (expected ISO 8601, dd.mm.yyyy HH:MM:SS or unix seconds)"
    problem = f"unparseable timestamp in column '{col}'"
    _raise_first(times.isna(), path, problem, first_row, None, lambda i: repr(raw.iloc[i]) + hint)
    return times


def _numeric(raw: pd.Series, path: Path, col: str, first_row: int, times) -> np.ndarray:
    text = raw.str.strip()
    num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    quote = lambda i: repr(raw.iloc[i])  # noqa: E731
    empty = (text == "").to_numpy()
    _raise_first(empty, path, f"empty cell in column '{col}'", first_row, times, quote)
    non_numeric = np.isnan(num) & (text.str.lower() != "nan").to_numpy()
    _raise_first(non_numeric, path, f"non-numeric value in column '{col}'", first_row, times, quote)
    _raise_first(~np.isfinite(num), path, f"NaN or inf in column '{col}'", first_row, times, quote)
    return num


def _check_increasing(times: pd.DatetimeIndex, path: Path, first_row: int) -> None:
    """Bars must be strictly increasing in time: a repeat or a step back is a look-ahead."""
    step = np.diff(times.asi8)
    bad = step <= 0
    if bad.any():
        kind = "duplicate timestamp" if step[bad.argmax()] == 0 else "timestamp out of order"
        detail = lambda i: f"{times[i + 1]} follows {times[i]} (row {first_row + i + 1})"  # noqa: E731
        _raise_first(bad, path, f"{kind} in column 'time'", first_row + 1, times[1:], detail)
