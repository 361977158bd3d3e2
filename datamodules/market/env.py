"""A trading environment over one split, vectorized in torch: N episodes step at once.

Semantics (checked against a hand-computed example in tests/test_market_env.py):
- a decision is taken after bar t closes, seeing bars t-W+1..t and the position it holds;
- the new position is filled at bar t+1's open and held to bar t+2's open, so it earns
  g_t = log(open[t+2] / open[t+1]): no same-bar look-ahead;
- reward = position * g_t - cost_bps * 1e-4 * |position - previous position|, the same
  fee-inclusive log PnL the trading metrics report;
- episodes start flat at a uniformly drawn bar and last `episode_length` decisions; they are
  truncated, not terminated (markets do not end), and restart automatically.
"""

from __future__ import annotations

import torch

from datamodules.market.series import MarketSeries
from modules.errors import ConfigError


def position_returns(
    position: torch.Tensor, previous: torch.Tensor, fill_return: torch.Tensor, cost: float
) -> torch.Tensor:
    """Fee-inclusive log return of holding `position` over a bar: the env reward and the metric."""
    return position * fill_return - cost * (position - previous).abs()


def path_returns(
    positions: torch.Tensor, fill_returns: torch.Tensor, cost_bps: float
) -> torch.Tensor:
    """Per-bar returns of holding `positions` [D] in turn, starting flat (walks, baselines)."""
    positions = positions.double()
    previous = torch.cat([torch.zeros(1, dtype=torch.float64), positions[:-1]])
    return position_returns(positions, previous, fill_returns, cost_bps * 1e-4)


class MarketEnv:
    def __init__(
        self,
        series: MarketSeries,
        num_envs: int,
        episode_length: int,
        positions: tuple[float, ...] = (-1.0, 0.0, 1.0),
        cost_bps: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if series.num_decisions < episode_length:
            raise ConfigError(
                f"data.episode_length={episode_length} is longer than the split's {series.num_decisions} decision bars"
            )
        self.series = series
        self.num_envs = num_envs
        self.episode_length = episode_length
        self.positions = torch.tensor(positions, dtype=torch.float64)
        self.cost = cost_bps * 1e-4
        self.generator = generator or torch.Generator().manual_seed(0)
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self.position = torch.zeros(num_envs, dtype=torch.float64)
        self.steps = torch.zeros(num_envs, dtype=torch.long)
        self.reset()

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Restart the masked envs (all by default) flat, at random bars."""
        mask = torch.ones(self.num_envs, dtype=torch.bool) if mask is None else mask
        count = int(mask.sum())
        if count == 0:
            return
        latest_start = self.series.last_decision - self.episode_length + 1
        starts = torch.randint(
            self.series.first_decision, latest_start + 1, (count,), generator=self.generator
        )
        self.t[mask] = starts
        self.position[mask] = 0.0
        self.steps[mask] = 0

    def observe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Window [N, F, W] ending at the current bars, and the positions held [N]."""
        return self.series.observe(self.t), self.position.float()

    def step(
        self, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply action indices [N]; returns (reward, done, final_t, final_position).

        `final_*` is the state each env reached before an automatic restart, so a learner can
        bootstrap the value of truncated episodes.
        """
        new_position = self.positions[actions]
        reward = position_returns(
            new_position, self.position, self.series.fill_returns[self.t], self.cost
        )
        self.position = new_position
        self.t = self.t + 1
        self.steps += 1
        done = self.steps >= self.episode_length
        final_t, final_position = self.t.clone(), self.position.clone()
        self.reset(done)
        return reward, done, final_t, final_position
