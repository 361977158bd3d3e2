"""What the trader shows in TensorBoard: the equity-curve figure and the Custom Scalars dashboard."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from modules.ppo.evaluation import Walk  # noqa: E402

# Custom Scalars tab: related curves on one chart ({category: {title: [tag regexes]}}).
DASHBOARD = {
    "trading (val)": {
        "Sharpe: strategy vs buy & hold": ["val/sharpe$", "val/bh_sharpe$"],
        "total return: strategy vs buy & hold": ["val/total_return$", "val/bh_total_return$"],
        "max drawdown: strategy vs buy & hold": ["val/max_drawdown$", "val/bh_max_drawdown$"],
        "consistency: val Sharpe epoch std and change": [
            "val/sharpe_epoch_std$",
            "val/sharpe_change$",
        ],
    },
    "trading (train rollouts)": {
        "Sharpe: strategy vs buy & hold": ["train/sharpe$", "train/bh_sharpe$"],
        "turnover and exposure": ["train/turnover$", "train/exposure$"],
    },
    "PPO": {
        "losses": ["train/policy_loss$", "train/value_loss$", "train/entropy$"],
        "trust region": ["train/approx_kl$", "train/clip_fraction$"],
        "critic": ["train/explained_variance$"],
        "gradient norms": ["train/grad_norm/.*"],
    },
}


def equity_figure(walk: Walk, title: str) -> plt.Figure:
    times = pd.to_datetime(walk.timestamps.numpy())
    figure, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(9, 4.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
        constrained_layout=True,
    )
    top.plot(times, walk.net_returns.cumsum(0).exp().numpy(), label="strategy", color="tab:blue")
    top.plot(times, walk.hold_returns.cumsum(0).exp().numpy(), label="buy & hold", color="tab:gray")
    top.set_ylabel("equity (start = 1)")
    top.set_title(title)
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    position = walk.positions.numpy()
    bottom.fill_between(
        times, 0, position, where=position > 0, step="post", color="tab:green", label="long"
    )
    bottom.fill_between(
        times, 0, position, where=position < 0, step="post", color="tab:red", label="short"
    )
    bottom.set_ylim(-1.1, 1.1)
    bottom.set_yticks([-1, 0, 1])
    bottom.set_ylabel("position")
    return figure
