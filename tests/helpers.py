"""Test-only models and callbacks, importable by class_path from tests' configs."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback

from modules.example import ExampleClassifier


class NaNAtStep(ExampleClassifier):
    """Returns a NaN loss at optimizer step `nan_step`, as a diverging run would."""

    def __init__(self, *args, nan_step: int = 3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.nan_step = nan_step

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step == self.nan_step else loss


class StopAfterEpoch(Callback):
    """Simulates an interruption: ends `fit` after `epochs` epochs (checkpoints already written)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Only in the first run: the resumed one replays the end of that epoch.
        if trainer.current_epoch + 1 == self.epochs and trainer.ckpt_path is None:
            trainer.should_stop = True
