"""A one-screen Rich summary after `fit` and `test`: key metrics and where the outputs are."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table


class RunSummary(Callback):
    def __init__(self, max_rows: int = 40) -> None:
        self.max_rows = max_rows

    @rank_zero_only
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer, "fit", ("val/", "train/"))

    @rank_zero_only
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._print(trainer, "test", ("test/",))

    def _print(self, trainer: Trainer, stage: str, prefixes: tuple[str, ...]) -> None:
        scalars = {
            name: float(value)
            for name, value in sorted(trainer.callback_metrics.items())
            if isinstance(value, torch.Tensor) and value.numel() == 1 and "/grad_norm/" not in name
        }
        metrics = {n: v for prefix in prefixes for n, v in scalars.items() if n.startswith(prefix)}
        table = Table(title=f"{stage} summary ({_where(trainer, stage)})")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name in list(metrics)[: self.max_rows]:
            table.add_row(name, f"{metrics[name]:.4g}")
        console = Console()
        console.print(table)
        log_dir = trainer.logger.log_dir if trainer.logger is not None else None  # no DDP broadcast
        if log_dir:
            console.print(f"logs:        {log_dir}  (tensorboard --logdir {Path(log_dir).parent})")
        callback = trainer.checkpoint_callback
        if stage == "fit" and callback is not None:
            if callback.best_model_path:
                console.print(f"best ckpt:   {callback.best_model_path}")
            if callback.last_model_path:
                console.print(f"last ckpt:   {callback.last_model_path}")


def _where(trainer: Trainer, stage: str) -> str:
    """Fit: how far training got. Test: which checkpoint was evaluated."""
    if stage == "fit":
        return f"epoch {trainer.current_epoch}, step {trainer.global_step}"
    return f"checkpoint {trainer.ckpt_path}" if trainer.ckpt_path else "current weights"
