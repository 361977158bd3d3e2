"""Chronological train/val/test row ranges with an embargo gap between them.

Rows in a gap belong to no split. With a gap of at least the observation window, no window
of one split can contain a bar of another, and every split computes its features from its
own rows only (see `features.py`), so nothing crosses a boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from modules.errors import ConfigError, DataError


@dataclass(frozen=True)
class SplitRows:
    """Half-open data-row ranges [start, stop) of each split in the source file."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def __getitem__(self, name: str) -> tuple[int, int]:
        return getattr(self, name)


def chronological_splits(
    timestamps: pd.DatetimeIndex,
    min_rows: int,
    embargo: int,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    val_start: str | None = None,
    test_start: str | None = None,
    source: str = "data",
) -> SplitRows:
    """Split by dates when given (`val_start`/`test_start`, first bar on or after), else by fractions.

    Each split must keep at least `min_rows` rows (warm-up + window + a few decisions).
    """
    n = len(timestamps)
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in (0, 1) and sum below 1"
        )
    val_row = (
        _row_at(timestamps, val_start, "val_start")
        if val_start
        else round(n * (1 - val_fraction - test_fraction))
    )
    test_row = (
        _row_at(timestamps, test_start, "test_start")
        if test_start
        else round(n * (1 - test_fraction))
    )
    first, last = timestamps[0].date(), timestamps[-1].date()
    for key, date, row in (("val_start", val_start, val_row), ("test_start", test_start, test_row)):
        if date and not 0 < row < n:
            raise ConfigError(
                f"data.{key}={date!r} is outside {source}'s dates ({first} to {last})"
            )
    if (val_start or test_start) and val_row >= test_row:  # fractions: "too few rows" below
        raise ConfigError(
            f"the val split must start before the test split (data.val_start={val_start!r}, "
            f"data.test_start={test_start!r})"
        )
    splits = SplitRows(
        train=(0, val_row - embargo), val=(val_row, test_row - embargo), test=(test_row, n)
    )
    for name in ("train", "val", "test"):
        start, stop = splits[name]
        if stop - start < min_rows:
            raise DataError(
                f"{source}: {n} rows are too few: the {name} split gets {max(stop - start, 0)} rows "
                f"(rows {start}..{stop}) but needs {min_rows} for the feature warm-up, the window and "
                f"some decisions (embargo {embargo} rows between splits); use more data, a smaller "
                "data.window, or other split fractions/dates"
            )
    return splits


def _row_at(timestamps: pd.DatetimeIndex, date: str, key: str) -> int:
    try:
        when = pd.Timestamp(date)
    except ValueError as error:
        raise ConfigError(f"data.{key}={date!r} is not a date: {error}") from None
    if pd.isna(when):
        raise ConfigError(f"data.{key}={date!r} is not a date")
    if when.tzinfo is not None:  # the loaded timestamps are naive UTC
        when = when.tz_convert(None)
    return int(timestamps.searchsorted(when, side="left"))
