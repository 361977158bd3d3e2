"""Trading metrics of a sequence of per-bar net log returns, checked by hand in tests.

Conventions: returns are fee-inclusive log returns per bar; annualization uses the bars per
year measured from the timestamps; Sharpe and Sortino assume a zero risk-free rate.
"""

from __future__ import annotations

import math

import torch


def trading_metrics(
    net_returns: torch.Tensor, positions: torch.Tensor, periods_per_year: float
) -> dict[str, float]:
    """total_return, annual_log_return, sharpe, sortino, max_drawdown, hit_rate, turnover, exposure.

    - sharpe = mean / std (sample std) * sqrt(periods_per_year); 0 when std is 0;
    - sortino = mean / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year); 0 with no losing bar;
    - max_drawdown = largest fall of equity exp(cumsum r) from its running peak (start = 1);
    - hit_rate = share of bars in the market (position != 0) that made money;
    - turnover = mean |position change| per bar, starting flat.
    """
    r = net_returns.double()
    positions = positions.double()
    n = len(r)
    mean = float(r.mean())
    std = float(r.std()) if n > 1 else 0.0
    if std <= 1e-12 * abs(mean):  # constant returns: rounding leaves a std of ~1e-19, not 0
        std = 0.0
    downside = math.sqrt(float((r.clamp(max=0) ** 2).mean()))
    scale = math.sqrt(periods_per_year)
    equity = torch.cat([torch.ones(1, dtype=torch.float64), r.cumsum(0).exp()])
    drawdown = 1 - equity / equity.cummax(0).values
    in_market = positions != 0
    changes = torch.diff(positions, prepend=torch.zeros(1, dtype=torch.float64)).abs()
    return {
        "total_return": math.expm1(float(r.sum())),
        "annual_log_return": mean * periods_per_year,
        "sharpe": mean / std * scale if std > 0 else 0.0,
        "sortino": mean / downside * scale if downside > 0 else 0.0,
        "max_drawdown": float(drawdown.max()),
        "hit_rate": float((r[in_market] > 0).double().mean()) if in_market.any() else 0.0,
        "turnover": float(changes.mean()),
        "exposure": float(positions.abs().mean()),
    }
