"""Trading metrics of a four-bar example, each worked out by hand, and their edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.market import MarketDataModule
from datamodules.market.series import MarketSeries
from modules.ppo.trading_metrics import trading_metrics

RETURNS = [0.01, -0.02, 0.03, 0.0]
POSITIONS = [1.0, 1.0, -1.0, 0.0]


def metrics(returns, positions, periods_per_year: float = 252.0) -> dict[str, float]:
    return trading_metrics(
        torch.tensor(returns, dtype=torch.float64), torch.tensor(positions), periods_per_year
    )


def test_four_bars_by_hand():
    m = metrics(RETURNS, POSITIONS)
    assert set(m) == {
        "total_return",
        "annual_log_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "hit_rate",
        "turnover",
        "exposure",
    }
    # mean = 0.02 / 4 = 0.005; deviations 0.005, -0.025, 0.025, -0.005;
    # squares 2.5e-5 + 6.25e-4 + 6.25e-4 + 2.5e-5 = 1.3e-3; sample variance = 1.3e-3 / 3.
    sample_std = math.sqrt(1.3e-3 / 3)
    assert m["sharpe"] == pytest.approx(0.005 / sample_std * math.sqrt(252), rel=1e-9)
    assert m["sharpe"] == pytest.approx(3.8129, abs=1e-4)
    # Downside deviation: only -0.02 is a loss; sqrt((0 + 4e-4 + 0 + 0) / 4) = 0.01.
    assert m["sortino"] == pytest.approx(0.005 / 0.01 * math.sqrt(252), rel=1e-9)
    # Equity 1, e^0.01, e^-0.01, e^0.02, e^0.02: the worst fall is from e^0.01 to e^-0.01.
    assert m["max_drawdown"] == pytest.approx(1 - math.exp(-0.02), rel=1e-9)
    # In the market on bars 0, 1, 2 (position != 0): 0.01 and 0.03 made money, -0.02 did not.
    assert m["hit_rate"] == pytest.approx(2 / 3)
    # From flat: |1 - 0| + |1 - 1| + |-1 - 1| + |0 - -1| = 4 over 4 bars.
    assert m["turnover"] == pytest.approx(1.0)
    assert m["exposure"] == pytest.approx(3 / 4)
    assert m["total_return"] == pytest.approx(math.exp(0.02) - 1, rel=1e-9)
    assert m["annual_log_return"] == pytest.approx(0.005 * 252, rel=1e-9)


def test_drawdown_counts_a_fall_from_the_initial_equity():
    # The very first bar loses: equity 1 -> e^-0.05 -> e^-0.02; a peak of 1 before any bar.
    m = metrics([-0.05, 0.03], [1.0, 1.0])
    assert m["max_drawdown"] == pytest.approx(1 - math.exp(-0.05), rel=1e-9)
    assert metrics([0.01, 0.02], [1.0, 1.0])["max_drawdown"] == 0.0


def test_turnover_and_exposure_with_fractional_positions():
    # From flat: 0.5 + 0.5 + 1.5 = 2.5 over 3 bars; exposure (0.5 + 1 + 0.5) / 3.
    m = metrics([0.0, 0.0, 0.0], [0.5, 1.0, -0.5])
    assert m["turnover"] == pytest.approx(2.5 / 3)
    assert m["exposure"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("value, bars", [(0.0, 5), (0.01, 4), (0.1, 10), (-0.02, 8)])
def test_constant_returns_have_zero_sharpe(value, bars):
    m = metrics([value] * bars, [1.0] * bars)
    assert m["sharpe"] == 0.0


@pytest.mark.parametrize("value, bars", [(0.001, 252), (0.1, 3), (0.003, 7)])
def test_constant_returns_have_zero_sharpe_despite_rounding(value, bars):
    m = metrics([value] * bars, [1.0] * bars)
    assert m["sharpe"] == 0.0


def test_no_losing_bar_gives_zero_sortino_and_one_bar_zero_sharpe():
    assert metrics([0.01, 0.02, 0.0], [1.0, 1.0, 1.0])["sortino"] == 0.0
    one = metrics([0.01], [1.0])
    assert one["sharpe"] == 0.0 and one["sortino"] == 0.0
    assert one["total_return"] == pytest.approx(math.exp(0.01) - 1)


def test_never_in_the_market():
    m = metrics([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert m["hit_rate"] == 0.0 and m["turnover"] == 0.0 and m["exposure"] == 0.0
    assert m["sharpe"] == 0.0 and m["sortino"] == 0.0
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0


def test_hit_rate_counts_fee_inclusive_returns_of_in_market_bars_only():
    # Bar 1 is flat (its 0.05 would be a hit if counted); bar 2 lost only its fee.
    m = metrics([0.02, 0.05, -0.0001, 0.01], [1.0, 0.0, 1.0, 1.0])
    assert m["hit_rate"] == pytest.approx(2 / 3)


def test_periods_per_year_by_hand():
    # 5 bars spread evenly over exactly one year (365.25 days): 4 periods per year.
    year_ns = int(365.25 * 86_400 * 10**9)
    timestamps = torch.tensor([0, 1, 2, 3, 4], dtype=torch.int64) * (year_ns // 4)
    series = MarketSeries(
        features=torch.zeros(5, 1),
        fill_returns=torch.zeros(5, dtype=torch.float64),
        timestamps=timestamps,
        aux_sign=torch.zeros(5),
        aux_volatility=torch.zeros(5),
        window=1,
        first_decision=0,
        last_decision=2,
    )
    assert series.periods_per_year == pytest.approx(4.0)


@pytest.mark.parametrize("dataset, low, high", [("googl", 240, 260), ("eurusd", 5800, 6500)])
def test_periods_per_year_of_the_builtin_markets(dataset, low, high):
    # About 252 trading days a year; about 24 x 5 x 52 = 6,240 FX hours.
    ppy = MarketDataModule(dataset=dataset).split("train").periods_per_year
    assert low < ppy < high
