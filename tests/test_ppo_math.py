"""PPO/A2C math, GAE, rollout collection, minibatches and the greedy walk, against hand numbers."""

from __future__ import annotations

import math

import pytest
import torch

from datamodules.market.env import MarketEnv
from datamodules.market.features import Normalizer, bar_features
from datamodules.market.rollout import Rollout, collect, gae, minibatches
from datamodules.market.series import MarketSeries
from datamodules.market.synthetic import ar1_market
from modules.ppo.evaluation import greedy_walk
from modules.ppo.losses import a2c_policy_loss, explained_variance, ppo_policy_loss, value_loss

NAN = float("nan")


# ---- GAE ------------------------------------------------------------------------------------
def test_gae_three_steps_with_a_done_in_the_middle():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])  # [T=3, N=1]
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.tensor([[False], [True], [False]])
    next_value = torch.tensor([2.0])
    advantages, returns = gae(rewards, values, dones, next_value, gamma=0.9, lam=0.8)

    # k = 2 (not done): delta = 3 + 0.9 * 2.0 - 1.5 = 3.3;             A2 = 3.3
    # k = 1 (done):     delta = 2 + 0 - 1.0 = 1.0;                     A1 = 1.0 (no carry)
    # k = 0 (not done): delta = 1 + 0.9 * 1.0 - 0.5 = 1.4;             A0 = 1.4 + 0.72 * 1.0
    assert advantages[:, 0].tolist() == pytest.approx([2.12, 1.0, 3.3], abs=1e-6)
    assert returns[:, 0].tolist() == pytest.approx([2.62, 2.0, 4.8], abs=1e-6)


def test_gae_without_dones_is_the_discounted_sum_of_deltas():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two envs
    values = torch.zeros(2, 2)
    dones = torch.zeros(2, 2, dtype=torch.bool)
    advantages, _ = gae(rewards, values, dones, torch.tensor([10.0, 0.0]), gamma=0.5, lam=1.0)
    # env 0: A1 = 0 + 0.5 * 10 = 5; A0 = 1 + 0.5 * 5 = 3.5. env 1: A1 = 1, A0 = 0 + 0.5 * 1.
    assert advantages.flatten().tolist() == pytest.approx([3.5, 0.5, 5.0, 1.0])


# ---- losses ---------------------------------------------------------------------------------
def test_ppo_policy_loss_with_one_clipped_ratio():
    old = torch.tensor([-1.0, -2.0])
    new = (old + torch.tensor([math.log(1.5), math.log(0.9)])).requires_grad_()
    advantages = torch.tensor([1.0, -2.0])
    out = ppo_policy_loss(new, old, advantages, clip_coef=0.2)

    # Sample 0: ratio 1.5, A = +1: max(-1.5, -1.2) = -1.2 (clipped at 1.2).
    # Sample 1: ratio 0.9, A = -2: max(1.8, 1.8) = 1.8 (inside the range).
    assert out["policy_loss"].item() == pytest.approx((-1.2 + 1.8) / 2, abs=1e-6)
    kl = ((1.5 - 1) - math.log(1.5) + (0.9 - 1) - math.log(0.9)) / 2
    assert out["approx_kl"].item() == pytest.approx(kl, rel=1e-5)
    assert out["approx_kl"].item() == pytest.approx(0.049948, abs=1e-6)
    assert out["clip_fraction"].item() == 0.5

    # The clipped sample gets no gradient; the other d/dlogp (-A r / 2) = 2 * 0.9 / 2.
    out["policy_loss"].backward()
    assert new.grad.tolist() == pytest.approx([0.0, 0.9], abs=1e-6)


def test_ppo_policy_loss_keeps_the_pessimistic_unclipped_term():
    # Ratio 1.5 with A = -1: max(1.5, 1.2) = 1.5, yet it counts as clipped (|r - 1| > 0.2).
    out = ppo_policy_loss(
        torch.tensor([math.log(1.5)]), torch.tensor([0.0]), torch.tensor([-1.0]), 0.2
    )
    assert out["policy_loss"].item() == pytest.approx(1.5, abs=1e-6)
    assert out["clip_fraction"].item() == 1.0


def test_value_loss_clipped_and_unclipped():
    new = torch.tensor([1.0, 3.0])
    old = torch.tensor([0.0, 2.5])
    returns = torch.tensor([2.0, 2.0])
    # Unclipped: errors (1 - 2)^2 = 1 and (3 - 2)^2 = 1: 0.5 * mean = 0.5.
    assert value_loss(new, old, returns, None).item() == pytest.approx(0.5)
    # Clipped values: 0 + 0.2 = 0.2 -> (0.2 - 2)^2 = 3.24; 2.5 + 0.2 = 2.7 -> 0.49.
    # max(1, 3.24) = 3.24 and max(1, 0.49) = 1: 0.5 * (3.24 + 1) / 2 = 1.06.
    assert value_loss(new, old, returns, 0.2).item() == pytest.approx(1.06, abs=1e-6)


def test_a2c_policy_loss():
    old = torch.tensor([-0.5, -1.0])
    new = torch.tensor([-0.5, -1.0 + math.log(2.0)])
    advantages = torch.tensor([2.0, 3.0])
    out = a2c_policy_loss(new, old, advantages)
    # -(2 * -0.5 + 3 * (-1 + ln 2)) / 2
    assert out["policy_loss"].item() == pytest.approx(-(-1.0 + 3 * (-1 + math.log(2))) / 2)
    assert out["approx_kl"].item() == pytest.approx((1 - math.log(2)) / 2, rel=1e-5)
    assert out["clip_fraction"].item() == 0.0


def test_explained_variance():
    returns = torch.tensor([1.0, 2.0, 4.0, 7.0])
    assert explained_variance(returns, returns) == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 3.5), returns) == pytest.approx(0.0, abs=1e-6)
    # Var[returns] = 7 (sample); residual [0, 1, 0, -1] has variance 2/3.
    assert explained_variance(torch.tensor([1.0, 1.0, 4.0, 8.0]), returns) == pytest.approx(
        1 - (2 / 3) / 7, rel=1e-6
    )
    assert math.isnan(explained_variance(returns, torch.ones(4)))


# ---- rollouts -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def series() -> MarketSeries:
    frame = ar1_market(rows=80, seed=4)
    normalizer = Normalizer.fit(bar_features(frame, 20))
    return MarketSeries.build(frame, normalizer, window=8, vol_window=20, aux_horizon=5)


def constant_policy(value: float = 0.0, series_window: int = 8):
    def policy(bars: torch.Tensor, held: torch.Tensor):
        assert bars.dtype == torch.long and held.shape == bars.shape
        assert (bars >= series_window - 1).all()  # every bar has a full window behind it
        return torch.zeros(len(bars), 3), torch.full((len(bars),), value)

    return policy


def rollout_with(series, seed: int, value: float = 0.0, scale: float = 1.0) -> Rollout:
    generator = torch.Generator().manual_seed(seed)
    env = MarketEnv(series, num_envs=4, episode_length=5, cost_bps=10, generator=generator)
    return collect(env, constant_policy(value), 12, generator, scale, gamma=0.9, gae_lambda=0.95)


def test_collect_shapes_rewards_and_episode_bookkeeping(series):
    r = rollout_with(series, seed=0)
    for name in ("bars", "held", "actions", "logprobs", "values", "rewards", "dones"):
        assert getattr(r, name).shape == (12, 4), name
    assert r.net_returns.shape == r.positions.shape == r.advantages.shape == (12, 4)
    assert r.num_steps == 48
    # Zero values and reward_scale 1: no bootstrap term, rewards are the net returns.
    assert torch.equal(r.rewards, r.net_returns.float())
    assert torch.allclose(r.logprobs, torch.full((12, 4), math.log(1 / 3)))
    # Episodes of 5 steps started together: done after steps 4 and 9 in every env.
    assert r.dones.nonzero()[:, 0].unique().tolist() == [4, 9]
    assert r.dones.sum().item() == 8
    episodes = torch.cat([r.net_returns[0:5].sum(0), r.net_returns[5:10].sum(0)])
    assert torch.allclose(r.episode_returns, episodes, rtol=0, atol=1e-15)
    # Bookkeeping: the held position is the previous step's, flat after a restart.
    assert (r.held[0] == 0).all() and (r.held[5] == 0).all() and (r.held[10] == 0).all()
    for k in (0, 1, 2, 3, 5, 6, 7, 8, 10):
        assert torch.equal(r.held[k + 1], r.positions[k].float())
        assert torch.equal(r.bars[k + 1], r.bars[k] + 1)
    assert torch.equal(r.positions, torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)[r.actions])
    assert ((r.bars >= series.first_decision) & (r.bars <= series.last_decision)).all()
    # Zero values: the advantage of a last-of-episode step is its reward, and so is the last
    # step's (next value 0).
    assert torch.allclose(r.advantages[4], r.rewards[4]) and torch.allclose(
        r.advantages[11], r.rewards[11]
    )
    assert torch.equal(r.returns, r.advantages)


def test_collect_bootstraps_truncated_episodes_with_the_value_reached(series):
    r = rollout_with(series, seed=0, value=0.5, scale=100.0)
    # Done steps: 100 * net + gamma * V(final state) = 100 * net + 0.9 * 0.5.
    expected = 100 * r.net_returns.float() + 0.45 * r.dones.float()
    assert torch.allclose(r.rewards, expected, atol=1e-5)
    assert torch.equal(r.values, torch.full((12, 4), 0.5))


def test_collect_asks_the_policy_about_the_decision_bar_and_the_state_reached(series):
    # V(bar, held) = bar + 1000 * held tells which bar and position the policy was asked about.
    def bar_value(bars: torch.Tensor, held: torch.Tensor):
        return torch.zeros(len(bars), 3), bars.float() + 1000 * held

    generator = torch.Generator().manual_seed(0)
    env = MarketEnv(series, num_envs=4, episode_length=5, cost_bps=10, generator=generator)
    r = collect(env, bar_value, 12, generator, reward_scale=1.0, gamma=0.9, gae_lambda=0.95)
    assert torch.equal(r.values, r.bars.float() + 1000 * r.held)
    # A finished episode is bootstrapped with V(next bar, position just taken).
    reached = (r.bars + 1).float() + 1000 * r.positions.float()
    expected = r.net_returns.float() + 0.9 * reached * r.dones.float()
    assert r.dones.any() and torch.allclose(r.rewards, expected, atol=1e-3)


def test_collect_is_determined_by_the_generator(series):
    a, b, c = (
        rollout_with(series, seed=7),
        rollout_with(series, seed=7),
        rollout_with(series, seed=8),
    )
    assert torch.equal(a.actions, b.actions) and torch.equal(a.bars, b.bars)
    assert torch.equal(a.rewards, b.rewards)
    assert not torch.equal(a.actions, c.actions)
    assert set(a.actions.unique().tolist()) == {0, 1, 2}


def test_minibatches_cover_every_step_once_per_epoch():
    t, n = 5, 3
    ids = torch.arange(t * n).reshape(t, n)  # each step's id stands in for its bar
    rollout = Rollout(
        bars=ids,
        held=ids % 2,
        actions=ids * 10,
        logprobs=-ids.float(),
        values=ids.float() / 2,
        rewards=torch.zeros(t, n),
        dones=torch.zeros(t, n, dtype=torch.bool),
        net_returns=torch.zeros(t, n, dtype=torch.float64),
        positions=torch.zeros(t, n, dtype=torch.float64),
        episode_returns=torch.zeros(0),
        advantages=ids.float() * 3,
        returns=ids.float() * 4,
    )
    batches = list(
        minibatches(
            rollout,
            extras=lambda bars: {"extra": bars + 1000},
            epochs=3,
            minibatch_size=4,
            generator=torch.Generator().manual_seed(0),
        )
    )
    # 3 epochs x ceil(15 / 4) = 12 batches of 4, 4, 4, 3 steps.
    assert len(batches) == 12
    assert [len(b["bars"]) for b in batches] == [4, 4, 4, 3] * 3
    epochs = [torch.cat([b["bars"] for b in batches[i : i + 4]]) for i in (0, 4, 8)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(15))
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled each epoch
    for b in batches:  # every field is gathered with the same index
        ids_ = b["bars"]
        assert torch.equal(b["actions"], ids_ * 10) and torch.equal(b["held"], (ids_ % 2).float())
        assert torch.equal(b["logprobs"], -ids_.float()) and torch.equal(b["values"], ids_ / 2)
        assert torch.equal(b["advantages"], ids_ * 3.0) and torch.equal(b["returns"], ids_ * 4.0)
        assert torch.equal(b["extra"], ids_ + 1000)


# ---- greedy walk ----------------------------------------------------------------------------
FILLS = [0.0, 0.0, 0.01, 0.02, -0.01, 0.03, -0.02, 0.01, NAN, NAN]


def hand_series() -> MarketSeries:
    return MarketSeries(
        features=torch.arange(10.0)[:, None],  # feature 0 of bar t is t
        fill_returns=torch.tensor(FILLS, dtype=torch.float64),
        timestamps=torch.arange(10, dtype=torch.int64) * 1000,
        aux_sign=torch.zeros(10),
        aux_volatility=torch.zeros(10),
        window=2,
        first_decision=2,
        last_decision=7,
    )


def test_greedy_walk_always_long_is_buy_and_hold():
    def prefers_long(bars, held):
        return torch.tensor([[0.1, 0.2, 0.7]]).expand(len(bars), 3)

    walk = greedy_walk(prefers_long, hand_series(), (-1.0, 0.0, 1.0), cost_bps=10, chunk=4)
    assert walk.bars.tolist() == [2, 3, 4, 5, 6, 7]
    assert walk.timestamps.tolist() == [2000, 3000, 4000, 5000, 6000, 7000]
    assert walk.positions.tolist() == [1.0] * 6
    # The entry fee (0.001) on the first bar only, then the fill returns as they are.
    by_hand = [0.01 - 0.001, 0.02, -0.01, 0.03, -0.02, 0.01]
    assert walk.net_returns.tolist() == pytest.approx(by_hand, abs=1e-15)
    assert walk.hold_returns.tolist() == pytest.approx(by_hand, abs=1e-15)
    assert torch.allclose(walk.probabilities, torch.tensor([[0.1, 0.2, 0.7]]).expand(6, 3))


def test_greedy_walk_follows_the_bar_and_the_held_position():
    # Long after even bars, short after odd ones.
    def by_bar(bars, held):
        even = bars % 2 == 0
        return torch.where(
            even[:, None], torch.tensor([0.1, 0.1, 0.8]), torch.tensor([0.8, 0.1, 0.1])
        )

    walk = greedy_walk(by_bar, hand_series(), (-1.0, 0.0, 1.0), cost_bps=10, chunk=4)
    assert walk.positions.tolist() == [1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    # Entry 1 unit, then every bar reverses (2 units, 0.002).
    by_hand = [
        0.01 - 0.001,
        -0.02 - 0.002,
        -0.01 - 0.002,
        -0.03 - 0.002,
        -0.02 - 0.002,
        -0.01 - 0.002,
    ]
    assert walk.net_returns.tolist() == pytest.approx(by_hand, abs=1e-15)

    # Long when flat, flat when long: the walk is sequential in the position it holds.
    def alternate(bars, held):
        flat = held == 0
        return torch.where(
            flat[:, None], torch.tensor([0.1, 0.2, 0.7]), torch.tensor([0.1, 0.7, 0.2])
        )

    walk = greedy_walk(alternate, hand_series(), (-1.0, 0.0, 1.0), cost_bps=10)
    assert walk.positions.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    by_hand = [0.01 - 0.001, -0.001, -0.01 - 0.001, -0.001, -0.02 - 0.001, -0.001]
    assert walk.net_returns.tolist() == pytest.approx(by_hand, abs=1e-15)


def test_greedy_walk_long_only_starts_flat():
    def prefers_long(bars, held):
        return torch.tensor([[0.3, 0.7]]).expand(len(bars), 2)

    walk = greedy_walk(prefers_long, hand_series(), (0.0, 1.0), cost_bps=10)
    assert walk.positions.tolist() == [1.0] * 6
    assert walk.net_returns[0].item() == pytest.approx(0.01 - 0.001, abs=1e-15)
