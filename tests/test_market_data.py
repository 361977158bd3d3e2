"""Market data without leakage: causal features, train-only normalization, lazy splits, embargo."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from datamodules.market import MarketDataModule
from datamodules.market.features import Normalizer, bar_features
from datamodules.market.splits import chronological_splits
from datamodules.market.synthetic import ar1_market
from modules.errors import ConfigError, DataError

SMALL = {"window": 8, "episode_length": 8}  # min rows per split: 20 + 8 + 8 + 2 = 38


@pytest.fixture(scope="module")
def googl() -> MarketDataModule:
    return MarketDataModule(dataset="googl")


@pytest.mark.parametrize("k", [5, 20, 21, 22, 57, 500, -1])
def test_features_at_t_do_not_depend_on_later_bars(googl, k):
    frame = googl.frame("train")
    k = k % len(frame)
    full = bar_features(frame, 20)[:k]
    prefix = bar_features(frame.iloc[:k], 20)
    assert prefix.shape == full.shape == (k, 6)
    assert torch.equal(torch.isnan(prefix), torch.isnan(full))
    assert torch.isnan(full[: min(k, 20)]).all()  # the warm-up rows, and only those
    assert not torch.isnan(full[20:]).any()
    torch.testing.assert_close(prefix, full, rtol=0, atol=0, equal_nan=True)


def test_normalizer_is_fitted_on_train_rows_only(googl):
    val = googl.split("val")
    assert "test" not in googl.frames
    train_fit = Normalizer.fit(bar_features(googl.frame("train"), 20))
    assert torch.equal(googl.normalizer.mean, train_fit.mean)
    assert torch.equal(googl.normalizer.std, train_fit.std)
    val_fit = Normalizer.fit(bar_features(googl.frame("val"), 20))
    assert not torch.allclose(googl.normalizer.mean, val_fit.mean)
    assert not torch.allclose(googl.normalizer.std, val_fit.std)
    # A val cell is scaled with the train statistics: bar 100, feature 0 (the log return).
    close = googl.frame("val")["close"]
    log_return = torch.log(torch.tensor(close.iloc[100] / close.iloc[99], dtype=torch.float64))
    by_hand = (log_return - train_fit.mean[0]) / train_fit.std[0]
    assert val.features[100, 0].item() == pytest.approx(by_hand.item(), rel=1e-5)
    # Val features are computed from val rows only: its own warm-up rows are blank.
    assert (val.features[:20] == 0).all() and (val.features[20] != 0).all()


def write_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index_label="Date")
    return path


@pytest.mark.parametrize(
    "row, column, cell, problem",
    [
        (550, "close", "abc", "non-numeric value in column 'close' at row 551 .*'abc'"),
        (515, "open", "-5.0", "non-positive price in column 'open' at row 516 .*open=-5"),
        (599, "volume", "-1", "negative volume in column 'volume' at row 600"),
    ],
)
def test_test_rows_are_not_read_while_fitting(tmp_path, row, column, cell, problem):
    bars = ar1_market(rows=600, seed=2)
    bars.index = bars.index.as_unit("ns")  # the loader's resolution
    text = bars.astype(object)
    # Rows 510..599 are the test split (600 * 0.85 = 510); break one of them.
    text.iloc[row, text.columns.get_loc(column)] = cell
    path = write_csv(tmp_path, text)

    dm = MarketDataModule(dataset=str(path), window=16, episode_length=16)
    rows = dm.split_rows()
    # By hand: val starts at round(600 * 0.70) = 420, test at round(600 * 0.85) = 510, and
    # each split before them stops `embargo` = window = 16 rows earlier.
    assert (rows.train, rows.val, rows.test) == ((0, 404), (420, 494), (510, 600))

    dm.setup("fit")
    train, val = dm.split("train"), dm.split("val")
    assert "test" not in dm.frames and set(dm.series) == {"train", "val"}
    assert len(train.fill_returns) == 404 and len(val.fill_returns) == 74
    pd.testing.assert_frame_equal(dm.frame("train"), bars.iloc[0:404], check_freq=False)
    pd.testing.assert_frame_equal(dm.frame("val"), bars.iloc[420:494], check_freq=False)

    # The embargo: 16 file rows (>= the window) lie between the splits and belong to neither.
    times = bars.index
    assert dm.frame("train").index[-1] == times[403] and dm.frame("val").index[0] == times[420]
    assert (
        times.get_loc(dm.frame("val").index[0]) - times.get_loc(dm.frame("train").index[-1]) - 1
        == 16
    )
    assert rows.val[0] - rows.train[1] >= 16 and rows.test[0] - rows.val[1] >= 16

    # Once test is asked for, its rows are parsed and refused, naming the file and the row
    # (1-based data row, so file row 550 is "row 551").
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: {problem}"):
        dm.setup("test")
    assert "test" not in dm.frames


def test_test_rows_load_when_valid(tmp_path):
    bars = ar1_market(rows=600, seed=2)
    bars.index = bars.index.as_unit("ns")
    dm = MarketDataModule(dataset=str(write_csv(tmp_path, bars)), window=16, episode_length=16)
    dm.setup("test")
    assert set(dm.frames) == {"test"}
    pd.testing.assert_frame_equal(dm.frame("test"), bars.iloc[510:600], check_freq=False)


def test_too_few_rows_is_a_data_error():
    # Defaults: window 32, vol_window 20, episode 64 -> 118 rows needed per split; the train
    # split gets round(100 * 0.7) - 32 = 38.
    dm = MarketDataModule(dataset="synthetic", synthetic_rows=100)
    message = (
        "synthetic: 100 rows are too few: the train split gets 38 rows (rows 0..38) but needs 118"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        dm.split_rows()


def test_too_few_rows_names_the_short_split():
    times = pd.bdate_range("2000-01-03", periods=100)
    # train 0..60, val 70..80 (10 rows), test 90..100: val is the first one short of 11.
    with pytest.raises(DataError, match=r"too few: the val split gets 10 rows \(rows 70\.\.80\)"):
        chronological_splits(times, min_rows=11, embargo=10, val_fraction=0.2, test_fraction=0.1)


@pytest.mark.parametrize(
    "val_fraction, test_fraction", [(0.0, 0.15), (0.15, 1.0), (0.5, 0.5), (-0.1, 0.2), (0.7, 0.4)]
)
def test_bad_fractions_are_a_config_error(val_fraction, test_fraction):
    dm = MarketDataModule(
        dataset="synthetic", val_fraction=val_fraction, test_fraction=test_fraction
    )
    with pytest.raises(ConfigError, match="data.val_fraction"):
        dm.split_rows()


def test_embargo_shorter_than_window_is_a_config_error():
    with pytest.raises(ConfigError, match="data.embargo=4 must be at least data.window=8"):
        MarketDataModule(dataset="synthetic", window=8, embargo=4)


@pytest.mark.parametrize(
    "val_start, val_row",
    [
        ("2000-06-05", 110),  # a Monday: 22 weeks after Monday 2000-01-03, 22 * 5 = 110
        ("2000-06-03", 110),  # Saturday -> the next bar, Monday
        ("2000-06-04 12:00", 110),
        ("2000-06-02", 109),  # the Friday before
    ],
)
def test_date_splits_start_on_the_first_bar_on_or_after_the_date(val_start, val_row):
    times = pd.bdate_range("2000-01-03", periods=400)
    # 2000-09-04 is a Monday, 13 weeks after 2000-06-05: row 110 + 65 = 175.
    rows = chronological_splits(
        times, min_rows=10, embargo=8, val_start=val_start, test_start="2000-09-02"
    )
    assert rows.train == (0, val_row - 8)
    assert rows.val == (val_row, 167)
    assert rows.test == (175, 400)


def test_date_splits_in_the_datamodule():
    dm = MarketDataModule(
        dataset="synthetic",
        synthetic_rows=400,
        val_start="2000-06-03",
        test_start="2000-09-02",
        **SMALL,
    )
    assert dm.frame("val").index[0] == pd.Timestamp("2000-06-05")
    assert dm.frame("test").index[0] == pd.Timestamp("2000-09-04")
    # Train stops at row 110 - 8: the 8 bars 05-24 .. 06-02 are the embargo.
    assert dm.frame("train").index[-1] == pd.Timestamp("2000-05-23")
    assert len(dm.frame("val")) == 175 - 8 - 110


def test_a_date_with_a_timezone_is_read_as_utc():
    times = pd.bdate_range("2000-01-03", periods=400)
    kwargs = {"min_rows": 10, "embargo": 8, "test_start": "2000-09-02"}
    naive = chronological_splits(times, val_start="2000-06-05", **kwargs)
    aware = chronological_splits(times, val_start="2000-06-05T02:00:00+02:00", **kwargs)
    assert aware == naive


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ({"val_start": "1990-01-01"}, "val_start='1990-01-01' is outside data's dates"),
        ({"test_start": "2030-01-01"}, "test_start='2030-01-01' is outside"),
        ({"val_start": "2000-09-02", "test_start": "2000-06-03"}, "must start before the test"),
    ],
)
def test_split_dates_out_of_range_or_order_are_config_errors(dates, expected):
    times = pd.bdate_range("2000-01-03", periods=400)
    with pytest.raises(ConfigError, match=expected):
        chronological_splits(times, min_rows=10, embargo=8, **dates)


def test_bad_date_is_a_config_error():
    dm = MarketDataModule(dataset="synthetic", val_start="not a date")
    with pytest.raises(ConfigError, match="data.val_start='not a date' is not a date"):
        dm.split_rows()


def test_state_dict_round_trip_restores_the_normalizer(tmp_path):
    source = MarketDataModule(dataset="synthetic", synthetic_rows=400, seed=0, **SMALL)
    assert source.state_dict() == {}
    source.split("train")
    path = tmp_path / "state.pt"
    torch.save(source.state_dict(), path)
    state = torch.load(path, weights_only=True)  # as a checkpoint is read

    # Another market: its own train rows would give another normalizer.
    target = MarketDataModule(dataset="synthetic", synthetic_rows=400, seed=1, **SMALL)
    before = target.split("val").features.clone()
    assert not torch.allclose(target.normalizer.mean, source.normalizer.mean)

    target.load_state_dict(state)
    assert torch.equal(target.normalizer.mean, source.normalizer.mean)
    assert torch.equal(target.normalizer.std, source.normalizer.std)
    assert target.normalizer.clip == source.normalizer.clip
    after = target.split("val").features  # rebuilt with the restored statistics
    raw = bar_features(target.frame("val"), 20)
    expected = torch.nan_to_num(source.normalizer(raw), nan=0.0)
    assert torch.equal(after, expected)
    assert not torch.equal(after, before)
