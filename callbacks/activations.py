"""Activation statistics from forward hooks, for judging whether training is healthy.

Hooks are attached only for the one training batch that gets logged and removed right after,
so the other steps pay nothing. Only rank 0 attaches hooks under DDP (ranks see the same
model; one view is enough). Everything is removed at teardown.
"""

from __future__ import annotations

import fnmatch

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from callbacks.tensorboard import tensorboard


def activation_stats(x: torch.Tensor, saturation_threshold: float) -> dict[str, float]:
    """mean, std, max |x|, fraction exactly zero, fraction with |x| >= threshold."""
    x = x.detach().float()
    return {
        "mean": float(x.mean()),
        "std": float(x.std()) if x.numel() > 1 else 0.0,
        "max_abs": float(x.abs().max()),
        "frac_zero": float((x == 0).float().mean()),
        "frac_saturated": float((x.abs() >= saturation_threshold).float().mean()),
    }


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((t for t in map(_first_tensor, output) if t is not None), None)
    return None


class ActivationMonitor(Callback):
    """Logs `train/activations/<module>/<stat>` every `log_every_n_steps` training batches.

    Args:
        module_types: class names to watch (e.g. ["Conv1d", "Linear", "GELU"]).
        name_patterns: fnmatch patterns on qualified module names (e.g. ["trunk.blocks.*"]).
        log_every_n_steps: logging period in training batches.
        histograms: also write TensorBoard histograms of the activations.
        saturation_threshold: |x| at or above it counts as saturated (meant for tanh-like units).
    """

    def __init__(
        self,
        module_types: list[str] | None = None,
        name_patterns: list[str] | None = None,
        log_every_n_steps: int = 100,
        histograms: bool = False,
        saturation_threshold: float = 0.99,
    ) -> None:
        self.module_types = set(module_types or [])
        self.name_patterns = list(name_patterns or [])
        self.log_every_n_steps = log_every_n_steps
        self.histograms = histograms
        self.saturation_threshold = saturation_threshold
        self._handles: list = []
        self._captured: dict[str, torch.Tensor] = {}

    def selected_modules(self, pl_module: LightningModule) -> dict[str, torch.nn.Module]:
        return {
            name: module
            for name, module in pl_module.named_modules()
            if name
            and (
                type(module).__name__ in self.module_types
                or any(fnmatch.fnmatch(name, pattern) for pattern in self.name_patterns)
            )
        }

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int
    ) -> None:
        if trainer.global_rank != 0 or trainer.global_step % self.log_every_n_steps != 0:
            return
        for name, module in self.selected_modules(pl_module).items():
            self._handles.append(module.register_forward_hook(self._capture(name)))

    def _capture(self, name: str):
        def hook(module, inputs, output) -> None:
            tensor = _first_tensor(output)
            if tensor is not None and name not in self._captured:
                self._captured[name] = tensor.detach()

        return hook

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if not self._handles:
            return
        self._remove_hooks()
        metrics = {
            f"train/activations/{name}/{stat}": value
            for name, tensor in self._captured.items()
            for stat, value in activation_stats(tensor, self.saturation_threshold).items()
        }
        if trainer.logger is not None and metrics:
            trainer.logger.log_metrics(metrics, step=trainer.global_step)
        writer = tensorboard(trainer) if self.histograms else None
        if writer is not None:
            for name, tensor in self._captured.items():
                writer.add_histogram(
                    f"activations/{name}", tensor.float().cpu(), trainer.global_step
                )
        self._captured.clear()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._remove_hooks()
        self._captured.clear()
