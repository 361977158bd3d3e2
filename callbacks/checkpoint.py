"""`best.ckpt` by a monitored metric and a `last.ckpt` refreshed after every validation.

Lightning 2.6's ModelCheckpoint only rewrites `last.ckpt` in a step where a top-k checkpoint
was also saved, so once the monitored metric stops improving, `last.ckpt` goes stale and
`--ckpt_path last` would silently resume from an old epoch. This subclass always refreshes
it. Fixed file names (`best.ckpt`, `last.ckpt`) are what `--ckpt_path best|last` resolve to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class BestAndLastCheckpoint(ModelCheckpoint):
    def __init__(
        self, monitor: str, mode: Literal["min", "max"] = "max", dirpath: str | None = None
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            monitor=monitor,
            mode=mode,
            filename="best",
            save_top_k=1,
            save_last=True,
            enable_version_counter=False,
            auto_insert_metric_name=False,
            save_on_train_epoch_end=False,  # after validation, when the monitored metric exists
        )
        self._last_written_step = -1

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        fitting = trainer.state.fn == TrainerFn.FITTING
        if fitting and not trainer.sanity_checking and not trainer.fast_dev_run:
            if self._last_written_step != trainer.global_step:
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates) -> None:
        self._last_written_step = trainer.global_step
        super()._save_last_checkpoint(trainer, monitor_candidates)


def checkpoint_dir(trainer: Trainer) -> Path:
    """Where this run's checkpoints go: the checkpoint callback's dirpath if set, else
    `<log_dir>/checkpoints` (Lightning's default), else `<default_root_dir>/checkpoints`."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return Path(callback.dirpath)
    log_dir = trainer.logger.log_dir if trainer.logger is not None else None  # no broadcast
    return Path(log_dir or trainer.default_root_dir) / "checkpoints"
