"""A market with a planted, learnable signal: AR(1) log returns.

r_{t+1} = phi * r_t + sigma * eps. With phi > 0 the best position after bar t is sign(r_t),
which the `oracle_positions` policy takes; its Sharpe on a split is the bar a learner is
measured against. Opens equal the previous close (no overnight gap), so the env's open-to-open
fill return for a decision at t is exactly r_{t+1}.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def ar1_market(
    rows: int = 4000, phi: float = 0.3, sigma: float = 0.01, seed: int = 0
) -> pd.DataFrame:
    """OHLCV bars on business days from 2000-01-03, in the format `load_ohlcv` returns."""
    rng = np.random.default_rng(seed)
    returns = np.zeros(rows)
    noise = sigma * rng.standard_normal(rows)
    for t in range(1, rows):
        returns[t] = phi * returns[t - 1] + noise[t]
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(sigma * 0.5 * rng.standard_normal((2, rows)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = np.exp(13 + 0.3 * rng.standard_normal(rows))
    index = pd.bdate_range("2000-01-03", periods=rows, name="time")
    data = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(data, index=index)


def oracle_positions(frame: pd.DataFrame, decision_bars: torch.Tensor, phi: float) -> torch.Tensor:
    """sign(phi * r_t) at each decision bar t: the optimal position when costs are zero."""
    close = torch.tensor(frame["close"].to_numpy(), dtype=torch.float64)
    last_return = torch.log(close[decision_bars] / close[decision_bars - 1])
    return torch.sign(phi * last_return).float()
