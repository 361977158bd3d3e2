"""PPO vs A2C vs buy-and-hold on real data, over several seeds (the README's results table).

    python benchmarks/ppo_vs_a2c.py [--datasets googl eurusd] [--seeds 0 1 2] [--epochs 50] [--json out.json]

For each dataset, algorithm (configs/ppo.yaml, configs/a2c.yaml) and seed: `fit`, then `test`
with the best checkpoint by val Sharpe. Reports test Sharpe / return / max drawdown (mean and
std over seeds) beside buy-and-hold on the same test bars, and the epoch-to-epoch consistency
of val Sharpe during training (std over epochs, and mean |change| between epochs).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import parser, report  # noqa: E402
from main import main  # noqa: E402


def one_run(config: str, dataset: str, seed: int, epochs: int, workdir: Path) -> dict[str, float]:
    common = [
        "--config", str(ROOT / "configs" / config),
        "--seed_everything", str(seed),
        "--data.init_args.seed", str(seed),
        "--data.init_args.dataset", dataset,
        "--trainer.logger.init_args.save_dir", str(workdir),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    fitted = main(["fit", *common, "--trainer.max_epochs", str(epochs)])
    history = torch.tensor(fitted.model.val_sharpe_history)
    tested = main(["test", *common, "--ckpt_path", "best"])
    metrics = {
        k.removeprefix("test/"): float(v) for k, v in tested.trainer.callback_metrics.items()
    }
    metrics["val_sharpe_epoch_std"] = float(history.std())
    metrics["val_sharpe_mean_abs_change"] = float(history.diff().abs().mean())
    return metrics


def summarize(runs: list[dict[str, float]], key: str) -> tuple[float, float]:
    values = [run[key] for run in runs]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main_() -> None:
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--datasets", nargs="+", default=["googl", "eurusd"])
    args.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args.add_argument("--epochs", type=int, default=50, help="epochs per run (the configs: 50)")
    options = args.parse_args()
    metrics: dict[str, float] = {}
    lines = [
        "| data | algo | test Sharpe | test return | test max DD | B&H Sharpe | B&H return | B&H max DD | val Sharpe epoch std | val Sharpe mean abs change |",
        "|" + "---|" * 10,
    ]
    with tempfile.TemporaryDirectory() as workdir:
        for dataset in options.datasets:
            for algo in ("ppo", "a2c"):
                runs = [
                    one_run(f"{algo}.yaml", dataset, seed, options.epochs, Path(workdir))
                    for seed in options.seeds
                ]
                row = [dataset, algo]
                for key in (
                    "sharpe",
                    "total_return",
                    "max_drawdown",
                    "bh_sharpe",
                    "bh_total_return",
                    "bh_max_drawdown",
                    "val_sharpe_epoch_std",
                    "val_sharpe_mean_abs_change",
                ):
                    mean, std = summarize(runs, key)
                    metrics[f"{dataset}/{algo}/{key}_mean"] = mean
                    metrics[f"{dataset}/{algo}/{key}_std"] = std
                    row.append(f"{mean:.3f} ± {std:.3f}")
                lines.append("| " + " | ".join(row) + " |")
    ratios = {
        f"{d}/a2c_over_ppo_val_sharpe_epoch_std": metrics[f"{d}/a2c/val_sharpe_epoch_std_mean"]
        / metrics[f"{d}/ppo/val_sharpe_epoch_std_mean"]
        for d in options.datasets
    }
    print("\n".join(lines))
    print(f"(mean ± std over seeds {options.seeds}, {options.epochs} epochs each)")
    report("benchmarks/ppo_vs_a2c.py", ratios, metrics, options.json)


if __name__ == "__main__":
    main_()
