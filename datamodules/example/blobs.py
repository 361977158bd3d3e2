"""A generated classification problem (Gaussian blobs) for the foundation's example model.

It exists so every shared mechanism (CLI, callbacks, resume, DDP, error paths) is exercised
by tests without any workload's data. Generation is seeded, so every process and every
resume sees the same points.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, TensorDataset

from datamodules.samplers import EpochSeededSampler
from modules.errors import ConfigError


@dataclass(frozen=True)
class BlobsSpec:
    """What a model needs to know about this data (linked to `model.spec` by the CLI)."""

    in_features: int
    num_classes: int


torch.serialization.add_safe_globals(
    [BlobsSpec]
)  # specs live in hparams; keep weights_only loads working


class BlobsDataModule(LightningDataModule):
    def __init__(
        self,
        in_features: int = 8,
        num_classes: int = 3,
        samples: int = 600,
        spread: float = 1.0,
        batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if samples < 10 * num_classes:
            raise ConfigError(
                f"data.samples={samples} is too small for {num_classes} classes (need >= {10 * num_classes})"
            )
        self.save_hyperparameters()
        self.spec = BlobsSpec(in_features, num_classes)
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str) -> None:
        generator = torch.Generator().manual_seed(self.hparams.seed)
        centers = 3.0 * torch.randn(
            self.spec.num_classes, self.spec.in_features, generator=generator
        )
        labels = torch.randint(self.spec.num_classes, (self.hparams.samples,), generator=generator)
        points = centers[labels] + self.hparams.spread * torch.randn(
            self.hparams.samples, self.spec.in_features, generator=generator
        )
        n_train, n_val = int(0.7 * len(labels)), int(0.15 * len(labels))
        bounds = {
            "train": (0, n_train),
            "val": (n_train, n_train + n_val),
            "test": (n_train + n_val, len(labels)),
        }
        self.splits = {
            name: TensorDataset(points[a:b], labels[a:b]) for name, (a, b) in bounds.items()
        }

    def train_dataloader(self) -> DataLoader:
        data = self.splits["train"]
        sampler = EpochSeededSampler(len(data), seed=self.hparams.seed)
        return DataLoader(data, batch_size=self.hparams.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], batch_size=256)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=256)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
