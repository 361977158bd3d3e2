"""Per-bar features, all causal: the row for bar t uses bars <= t only.

Features (in this order): close-to-close log return; log(open/close), log(high/close),
log(low/close); volume z-score over the last `vol_window` bars; rolling volatility of log
returns over the last `vol_window` bars. The first `vol_window` rows are warm-up (NaN).

Normalization statistics are fitted on the train split only and then applied unchanged to
val and test (`Normalizer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

FEATURE_NAMES = ("log_return", "open_rel", "high_rel", "low_rel", "volume_z", "volatility")


def bar_features(frame: pd.DataFrame, vol_window: int = 20) -> torch.Tensor:
    """[T, F] float64 features; rows before `vol_window` are NaN (warm-up)."""
    close = frame["close"]
    log_return = np.log(close / close.shift(1))
    log_volume = np.log1p(frame["volume"])
    rolling = log_volume.rolling(vol_window, min_periods=vol_window)
    volume_std = rolling.std()
    volume_z = ((log_volume - rolling.mean()) / volume_std.where(volume_std > 0)).fillna(0.0)
    volatility = log_return.rolling(vol_window, min_periods=vol_window).std()
    columns = [
        log_return,
        np.log(frame["open"] / close),
        np.log(frame["high"] / close),
        np.log(frame["low"] / close),
        volume_z,
        volatility,
    ]
    features = torch.tensor(np.stack([np.asarray(c, dtype=np.float64) for c in columns], axis=1))
    features[:vol_window] = float("nan")
    return features


@dataclass
class Normalizer:
    """Per-feature mean/std, fitted on train rows; values are clipped to +-clip after scaling."""

    mean: torch.Tensor
    std: torch.Tensor
    clip: float = 10.0

    @classmethod
    def fit(cls, features: torch.Tensor) -> Normalizer:
        valid = features[~torch.isnan(features).any(dim=1)]
        std = valid.std(dim=0)
        return cls(valid.mean(dim=0), torch.where(std > 0, std, torch.ones_like(std)))

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.mean) / self.std
        return scaled.clamp(-self.clip, self.clip).float()

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "clip": self.clip}

    @classmethod
    def from_state_dict(cls, state: dict) -> Normalizer:
        return cls(state["mean"], state["std"], state["clip"])


def fill_returns(frame: pd.DataFrame) -> torch.Tensor:
    """[T] log(open[t+2] / open[t+1]): what a position decided after bar t earns.

    The order is filled at the next bar's open (no same-bar look-ahead) and held until the
    following decision is filled one bar later. NaN for the last two bars.
    """
    opens = torch.tensor(frame["open"].to_numpy(), dtype=torch.float64)
    out = torch.full_like(opens, float("nan"))
    out[:-2] = torch.log(opens[2:] / opens[1:-1])
    return out


def future_targets(frame: pd.DataFrame, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Auxiliary training targets for a decision at t (never model inputs).

    sign: 1.0 if the next `horizon` bars' fill return is positive, else 0.0;
    volatility: std of close-to-close log returns over bars t+1..t+horizon.
    Both are NaN where the horizon runs past the split.
    """
    opens = torch.tensor(frame["open"].to_numpy(), dtype=torch.float64)
    close = torch.tensor(frame["close"].to_numpy(), dtype=torch.float64)
    n = len(opens)
    sign = torch.full((n,), float("nan"), dtype=torch.float64)
    vol = torch.full((n,), float("nan"), dtype=torch.float64)
    if n > horizon + 1:
        ahead = torch.log(opens[horizon + 1 :] / opens[1 : n - horizon])
        sign[: n - horizon - 1] = (ahead > 0).double()
        returns = torch.log(close[1:] / close[:-1])  # returns[i] = r_{i+1}
        windows = returns.unfold(0, horizon, 1)  # windows[t] = r_{t+1..t+horizon}
        vol[: len(windows)] = windows.std(dim=1)
    return sign, vol
