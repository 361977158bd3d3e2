"""MarketEnv semantics against hand-computed examples: rewards, fees, fill timing, restarts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules.market.env import MarketEnv, position_returns
from datamodules.market.features import Normalizer, bar_features, fill_returns
from datamodules.market.series import MarketSeries
from datamodules.market.synthetic import ar1_market
from modules.errors import ConfigError

SHORT, FLAT, LONG = 0, 1, 2  # action indices for positions (-1, 0, 1)
NAN = float("nan")


def hand_series(
    fills: list[float],
    first_decision: int,
    last_decision: int,
    window: int = 2,
    features: torch.Tensor | None = None,
) -> MarketSeries:
    n = len(fills)
    return MarketSeries(
        features=torch.zeros(n, 3) if features is None else features,
        fill_returns=torch.tensor(fills, dtype=torch.float64),
        timestamps=torch.arange(n, dtype=torch.int64) * 86_400 * 10**9,
        aux_sign=torch.zeros(n),
        aux_volatility=torch.zeros(n),
        window=window,
        first_decision=first_decision,
        last_decision=last_decision,
    )


# 8 bars; decisions at bars 2..4 only, so with episode_length=3 every episode starts at bar 2.
FILLS = [0.0, 0.0, 0.01, -0.02, 0.03, 0.05, NAN, NAN]


def test_hand_computed_episode_rewards_done_and_restart():
    env = MarketEnv(hand_series(FILLS, 2, 4), num_envs=1, episode_length=3, cost_bps=10)
    assert env.t.tolist() == [2] and env.position.tolist() == [0.0]

    # Episode 1: short, long, long. Fee is 10 bps = 0.001 per unit of position change.
    expected = [
        (SHORT, -1 * 0.01 - 0.001 * 1, False),  # flat -> short at bar 2
        (LONG, 1 * -0.02 - 0.001 * 2, False),  # short -> long at bar 3: two units traded
        (LONG, 1 * 0.03 - 0.0, True),  # hold long at bar 4: no fee; the 3rd step ends it
    ]
    for action, reward_by_hand, done_by_hand in expected:
        reward, done, final_t, final_position = env.step(torch.tensor([action]))
        assert reward.dtype == torch.float64
        assert reward.item() == pytest.approx(reward_by_hand, abs=1e-15)
        assert done.tolist() == [done_by_hand]
    # final_* is the state reached before the automatic restart: after bar 4, long.
    assert final_t.tolist() == [5] and final_position.tolist() == [1.0]
    # ...and the env itself restarted flat at bar 2 with a fresh step count.
    assert env.t.tolist() == [2] and env.position.tolist() == [0.0] and env.steps.tolist() == [0]

    # Episode 2: long from flat pays the entry fee again (the restart really is flat).
    expected = [
        (LONG, 0.01 - 0.001, False),
        (FLAT, 0.0 - 0.001, False),
        (SHORT, -0.03 - 0.001, True),
    ]
    for action, reward_by_hand, done_by_hand in expected:
        reward, done, final_t, final_position = env.step(torch.tensor([action]))
        assert reward.item() == pytest.approx(reward_by_hand, abs=1e-15)
        assert done.tolist() == [done_by_hand]
    assert final_t.tolist() == [5] and final_position.tolist() == [-1.0]


def test_envs_step_independently_and_position_returns_matches_env():
    env = MarketEnv(hand_series(FILLS, 2, 4), num_envs=3, episode_length=3, cost_bps=10)
    reward, done, _, _ = env.step(torch.tensor([SHORT, FLAT, LONG]))
    assert reward.tolist() == pytest.approx([-0.011, 0.0, 0.009], abs=1e-15)
    assert env.position.tolist() == [-1.0, 0.0, 1.0] and env.t.tolist() == [3, 3, 3]
    assert not done.any()
    # The metric helper is the same function: short -> long over bar 3, by hand.
    value = position_returns(
        torch.tensor([1.0], dtype=torch.float64),
        torch.tensor([-1.0], dtype=torch.float64),
        torch.tensor([-0.02], dtype=torch.float64),
        0.001,
    )
    assert value.item() == pytest.approx(-0.022, abs=1e-15)


def test_random_starts_stay_inside_the_decision_range():
    # Decisions 2..9, episode_length 3: starts must lie in 2..7 so all 3 decisions are <= 9.
    fills = [0.001] * 10 + [NAN, NAN]
    env = MarketEnv(
        hand_series(fills, 2, 9),
        num_envs=500,
        episode_length=3,
        generator=torch.Generator().manual_seed(1),
    )
    assert set(env.t.tolist()) == {2, 3, 4, 5, 6, 7}
    for _ in range(3):
        reward, *_ = env.step(torch.full((500,), LONG))
        assert torch.isfinite(reward).all()


def test_episode_longer_than_split_is_a_config_error():
    with pytest.raises(ConfigError, match="episode_length=4"):
        MarketEnv(hand_series(FILLS, 2, 4), num_envs=1, episode_length=4)


def ohlc_frame(opens: list[float], closes: list[float]) -> pd.DataFrame:
    opens_, closes_ = np.array(opens), np.array(closes)
    return pd.DataFrame(
        {
            "open": opens_,
            "high": np.maximum(opens_, closes_) + 1.0,
            "low": np.minimum(opens_, closes_) - 1.0,
            "close": closes_,
            "volume": np.full(len(opens), 1000.0),
        },
        index=pd.bdate_range("2021-01-04", periods=len(opens), name="time"),
    )


OPENS = [100.0, 101.0, 103.0, 102.0, 106.0, 105.0, 104.0, 108.0]
CLOSES = [100.5, 102.0, 102.5, 104.0, 105.5, 104.5, 107.0, 109.0]


def long_reward_at(frame: pd.DataFrame, t: int) -> float:
    """Reward of going long after bar t, without fees, in an env over `frame`."""
    series = hand_series(fill_returns(frame).tolist(), t, t)
    env = MarketEnv(series, num_envs=1, episode_length=1, cost_bps=0.0)
    assert env.t.item() == t
    return env.step(torch.tensor([LONG]))[0].item()


def test_fill_returns_by_hand():
    fills = fill_returns(ohlc_frame(OPENS, CLOSES))
    assert fills[:6].tolist() == pytest.approx(
        [
            math.log(103 / 101),
            math.log(102 / 103),
            math.log(106 / 102),
            math.log(105 / 106),
            math.log(104 / 105),
            math.log(108 / 104),
        ],
        rel=1e-12,
    )
    assert torch.isnan(fills[6:]).all()


@pytest.mark.parametrize("t", [2, 3])
def test_decision_after_bar_t_earns_next_open_to_open(t):
    frame = ohlc_frame(OPENS, CLOSES)
    reward = long_reward_at(frame, t)
    assert reward == pytest.approx(math.log(OPENS[t + 2] / OPENS[t + 1]), rel=1e-12)

    # Every price at bars <= t+1 except open[t+1] may change without changing the reward:
    # the decision knows bar t, and is filled at the open of t+1, before t+1's high/low/close.
    changed = frame.copy()
    for bar in range(t + 2):
        for column in ("open", "high", "low", "close"):
            if (bar, column) != (t + 1, "open"):
                changed.iloc[bar, changed.columns.get_loc(column)] *= 1.5
    changed.iloc[t + 1, changed.columns.get_loc("high")] = 1000.0
    changed.iloc[t + 1, changed.columns.get_loc("close")] = 999.0
    assert long_reward_at(changed, t) == reward

    # Prices after bar t+2's open do not matter either.
    later = frame.copy()
    later.iloc[t + 2, later.columns.get_loc("close")] = 1.0
    later.iloc[t + 3 :, :4] = 1.0
    assert long_reward_at(later, t) == reward

    # The two opens it is made of do matter.
    for bar in (t + 1, t + 2):
        moved = frame.copy()
        moved.iloc[bar, moved.columns.get_loc("open")] *= 1.1
        assert long_reward_at(moved, t) != pytest.approx(reward)


def test_long_only_positions_map_action_indices():
    env = MarketEnv(
        hand_series(FILLS, 2, 4), num_envs=2, episode_length=3, positions=(0.0, 1.0), cost_bps=10
    )
    reward, *_ = env.step(torch.tensor([1, 0]))  # index 1 = long, index 0 = flat
    assert env.position.tolist() == [1.0, 0.0]
    assert reward.tolist() == pytest.approx([0.01 - 0.001, 0.0], abs=1e-15)
    reward, *_ = env.step(torch.tensor([0, 1]))
    assert env.position.tolist() == [0.0, 1.0]
    assert reward.tolist() == pytest.approx([-0.001, -0.02 - 0.001], abs=1e-15)


def test_observe_returns_the_window_ending_at_t_inclusive():
    # features[t, f] = 10 * t + f, so every cell names its bar and feature.
    features = torch.tensor([[10.0 * t + f for f in range(3)] for t in range(8)])
    series = hand_series(FILLS, 3, 4, window=3, features=features)
    env = MarketEnv(series, num_envs=1, episode_length=2, cost_bps=10)
    assert env.t.tolist() == [3]

    obs, held = env.observe()
    assert obs.shape == (1, 3, 3)  # [N, F, W]
    # Bars 1, 2, 3 (oldest first) for each feature; bar 4 is not visible yet.
    assert obs[0].tolist() == [[10.0, 20.0, 30.0], [11.0, 21.0, 31.0], [12.0, 22.0, 32.0]]
    assert held.dtype == torch.float32 and held.tolist() == [0.0]

    env.step(torch.tensor([SHORT]))
    obs, held = env.observe()
    assert obs[0].tolist() == [[20.0, 30.0, 40.0], [21.0, 31.0, 41.0], [22.0, 32.0, 42.0]]
    assert held.tolist() == [-1.0]


def test_built_series_decides_only_on_full_windows_with_known_fills():
    frame = ar1_market(rows=120, seed=3)
    window, vol_window = 8, 20
    raw = bar_features(frame, vol_window)
    series = MarketSeries.build(frame, Normalizer.fit(raw), window, vol_window, aux_horizon=5)
    assert series.first_decision == 27 and series.last_decision == 117
    # The first decision's window is bars 20..27: the first bars after the warm-up.
    first = series.observe(torch.tensor([27]))[0]  # [F, W]
    assert (first != 0).all()
    assert (series.features[:20] == 0).all()  # warm-up rows are zeroed, never observed
    assert torch.isfinite(series.fill_returns[117]) and torch.isnan(series.fill_returns[118])
    # The synthetic market opens at the previous close, so the fill return is r_{t+1}.
    close = frame["close"].to_numpy()
    assert series.fill_returns[50].item() == pytest.approx(math.log(close[51] / close[50]))
