"""Saves the global RNG states in checkpoints so a resumed run draws the same numbers.

Lightning does not checkpoint the Python/NumPy/torch generators, so dropout masks and any
global sampling diverge after `--ckpt_path last`. This callback's state_dict rides along in
the checkpoint and is restored before training resumes.

Limit: under DDP the checkpoint is written by rank 0, so every rank restores rank 0's state.
Workloads whose data randomness matters per rank seed it from (seed, rank, epoch) instead.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback


class RNGStateCheckpoint(Callback):
    def state_dict(self) -> dict[str, Any]:
        state = {
            "python": random.getstate(),
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_train_start, after the sanity check: its dataloader draws from the
        # global RNG, which the uninterrupted run did long before this checkpoint.
        self._pending = state_dict

    def on_train_start(self, trainer, pl_module) -> None:
        if self._pending is not None:
            _restore(self._pending)
            self._pending = None


def _restore(state_dict: dict[str, Any]) -> None:
    random.setstate(state_dict["python"])
    kind, keys, pos, has_gauss, cached = state_dict["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state_dict["torch"])
    if "cuda" in state_dict and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state_dict["cuda"])


def _numpy_state() -> tuple:
    """NumPy's state with its key array as a tensor, so `torch.load(weights_only=True)` accepts it."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)
