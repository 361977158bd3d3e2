"""Deterministic evaluation: walk a whole split, bar by bar, taking the most likely action.

The policy sees the position it holds, so the walk is sequential; but there are only a few
possible positions, so the action probabilities for every (bar, position) pair are computed
in one batched pass first and the walk itself is a cheap loop over argmaxes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from datamodules.market.env import path_returns
from datamodules.market.series import MarketSeries

# probs_fn(bars [B], held [B]) -> action probabilities [B, A] (bar t: the window ending at t)
ProbsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Walk:
    bars: torch.Tensor  # [D] decision bars
    timestamps: torch.Tensor  # [D] int64 ns
    positions: torch.Tensor  # [D] position taken after each bar
    net_returns: torch.Tensor  # [D] fee-inclusive log returns of the strategy
    hold_returns: torch.Tensor  # [D] the same for buy-and-hold (long from the first bar)
    probabilities: torch.Tensor  # [D, A] of the action taken's state


@torch.no_grad()
def greedy_walk(
    probs_fn: ProbsFn,
    series: MarketSeries,
    positions: tuple[float, ...],
    cost_bps: float,
    chunk: int = 2048,
) -> Walk:
    bars = series.decision_bars
    table = torch.empty(len(bars), len(positions), len(positions))  # [D, held, action]
    for held_index, held in enumerate(positions):
        for start in range(0, len(bars), chunk):
            chunk_bars = bars[start : start + chunk]
            held_tensor = torch.full((len(chunk_bars),), held)
            table[start : start + chunk, held_index] = (
                probs_fn(chunk_bars, held_tensor).float().cpu()
            )
    held_index = positions.index(0.0)
    taken, chosen_probs = [], []
    for d in range(len(bars)):
        action = int(table[d, held_index].argmax())
        taken.append(positions[action])
        chosen_probs.append(table[d, held_index])
        held_index = action
    position = torch.tensor(taken, dtype=torch.float64)
    fill = series.fill_returns[bars]
    return Walk(
        bars=bars,
        timestamps=series.timestamps[bars],
        positions=position,
        net_returns=path_returns(position, fill, cost_bps),
        hold_returns=path_returns(torch.ones_like(position), fill, cost_bps),
        probabilities=torch.stack(chosen_probs),
    )
