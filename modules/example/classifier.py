"""The foundation's example workload: a small MLP classifier on `BlobsDataModule`.

Small on purpose: it is the model the shared mechanisms are tested with before (and beside)
the real workloads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from datamodules.example import BlobsSpec


class ExampleClassifier(LightningModule):
    def __init__(
        self,
        spec: BlobsSpec | None = None,
        hidden: int = 32,
        dropout: float = 0.1,
        lr: float = 1e-2,
    ) -> None:
        super().__init__()
        if spec is None:
            raise ValueError(
                "spec is linked from the datamodule; build ExampleClassifier through the CLI or pass spec="
            )
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(spec.in_features, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, spec.num_classes),
        )
        self.accuracy = nn.ModuleDict(
            {s: MulticlassAccuracy(spec.num_classes) for s in ("train_", "val_", "test_")}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        accuracy = self.accuracy[f"{stage}_"]
        accuracy(logits, y)
        self.log(
            f"{stage}/loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            sync_dist=stage != "train",
        )
        self.log(f"{stage}/acc", accuracy, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).argmax(-1)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
