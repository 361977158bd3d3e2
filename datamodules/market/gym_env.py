"""A gymnasium view of one `MarketEnv`, so other libraries (SB3, ...) can train on our market.

Same data, same fills, same fee-inclusive reward: it wraps a single-env `MarketEnv`. The
observation is the flattened [F, W] window followed by a one-hot of the position held.
Episodes end as truncations (`truncated=True`), never terminations.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from datamodules.market.env import MarketEnv
from datamodules.market.series import MarketSeries


class MarketGymEnv(gymnasium.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        series: MarketSeries,
        episode_length: int = 64,
        positions: tuple[float, ...] = (-1.0, 0.0, 1.0),
        cost_bps: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.env = MarketEnv(
            series, 1, episode_length, positions, cost_bps, torch.Generator().manual_seed(seed)
        )
        size = series.features.shape[1] * series.window + len(positions)
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = spaces.Discrete(len(positions))

    def observation(self, t: torch.Tensor, held: torch.Tensor) -> np.ndarray:
        return flatten_observation(
            self.env.series.observe(t), held.float(), self.env.positions.float()
        )[0].numpy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.env.generator.manual_seed(seed)
        self.env.reset()
        return self.observation(self.env.t, self.env.position), {}

    def step(self, action):
        reward, done, final_t, final_position = self.env.step(torch.tensor([int(action)]))
        observation = self.observation(
            final_t, final_position
        )  # the state reached, before any restart
        return observation, float(reward[0]), False, bool(done[0]), {}


def flatten_observation(
    window: torch.Tensor, held: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """[N, F, W] windows and [N] positions -> [N, F*W + A] flat observations."""
    one_hot = (held[:, None] == positions[None, :]).float()
    return torch.cat([window.reshape(len(window), -1), one_hot], dim=1)
