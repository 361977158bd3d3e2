"""Writes `predict` outputs to `<run>/predictions.csv`, so `main.py predict` leaves a file.

Any workload whose `predict_step` returns a dict of equally long 1-D tensors (or [N, K]
tensors, written as K columns) works; `timestamps` (int64 ns) become ISO times.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter


class CSVPredictionWriter(BasePredictionWriter):
    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if trainer.global_rank != 0 or not predictions:
            return
        columns: dict[str, object] = {}
        for name in predictions[0]:
            value = torch.cat([batch[name] for batch in predictions]).cpu()
            if name == "timestamps":
                columns["time"] = pd.to_datetime(value.numpy())
            elif value.ndim == 2:
                columns.update({f"{name}_{k}": value[:, k].numpy() for k in range(value.shape[1])})
            else:
                columns[name] = value.numpy()
        folder = Path(trainer.logger.log_dir if trainer.logger else trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.filename
        pd.DataFrame(columns).to_csv(self.path, index=False)
        print(f"predictions: {self.path}")
