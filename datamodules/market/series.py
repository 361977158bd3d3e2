"""One split of a market, as tensors the env, the rollout buffer and evaluation share."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from datamodules.market.features import Normalizer, bar_features, fill_returns, future_targets


@dataclass
class MarketSeries:
    """Normalized features and fill returns of one split.

    Decision bars run from `first_decision` (warm-up and a full window behind it) to
    `last_decision` (the last bar whose fill return is known).
    """

    features: torch.Tensor  # [T, F] float32, normalized (warm-up rows zeroed, never observed)
    fill_returns: torch.Tensor  # [T] float64, log(open[t+2]/open[t+1])
    timestamps: torch.Tensor  # [T] int64 ns since epoch
    aux_sign: torch.Tensor  # [T] float32, NaN where unknown
    aux_volatility: (
        torch.Tensor
    )  # [T] float32 (normalized like the volatility feature), NaN where unknown
    window: int
    first_decision: int
    last_decision: int

    @classmethod
    def build(
        cls,
        frame: pd.DataFrame,
        normalizer: Normalizer,
        window: int,
        vol_window: int,
        aux_horizon: int,
    ) -> MarketSeries:
        raw = bar_features(frame, vol_window)
        features = torch.nan_to_num(normalizer(raw), nan=0.0)
        sign, volatility = future_targets(frame, aux_horizon)
        vol_index = -1  # the volatility feature's column
        volatility = (volatility - normalizer.mean[vol_index]) / normalizer.std[vol_index]
        timestamps = torch.tensor(frame.index.as_unit("ns").asi8, dtype=torch.int64)
        return cls(
            features=features,
            fill_returns=fill_returns(frame),
            timestamps=timestamps,
            aux_sign=sign.float(),
            aux_volatility=volatility.float(),
            window=window,
            first_decision=vol_window + window - 1,
            last_decision=len(frame) - 3,
        )

    @property
    def num_decisions(self) -> int:
        return self.last_decision - self.first_decision + 1

    @property
    def decision_bars(self) -> torch.Tensor:
        return torch.arange(self.first_decision, self.last_decision + 1)

    def observe(self, t: torch.Tensor) -> torch.Tensor:
        """[N, F, W] windows ending at bars `t` (inclusive)."""
        windows = self.features.unfold(0, self.window, 1)  # [T-W+1, F, W], a view
        return windows[t - self.window + 1]

    @property
    def periods_per_year(self) -> float:
        """Bars per calendar year, from the timestamps (about 252 daily stock bars, 6,200 FX hours)."""
        span_years = float(self.timestamps[-1] - self.timestamps[0]) / (365.25 * 86400 * 1e9)
        return (len(self.timestamps) - 1) / span_years
