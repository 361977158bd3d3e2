"""Gradient-norm monitoring and the NaN/Inf guard.

Norms are read in `on_before_optimizer_step`, i.e. after backward (and after the DDP
all-reduce) but before Lightning clips, so they show what clipping had to deal with.
The same hook is the last moment a non-finite gradient can be stopped from reaching the
weights, so the guard lives here too: `skip` drops the step (grads set to None, which every
torch optimizer skips, momentum included), `stop` saves a checkpoint of the still-finite
weights and ends the run with a message naming the bad parameter.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from callbacks.checkpoint import checkpoint_dir
from modules.errors import NonFiniteError


def grouped_grad_norms(
    module: torch.nn.Module, depth: int = 1, norm_type: float = 2.0
) -> dict[str, float]:
    """Total grad norm and one norm per parameter group (name prefix of `depth` parts)."""
    groups: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, param in module.named_parameters():
        if param.grad is not None:
            groups[".".join(name.split(".")[:depth])].append(param.grad.detach())
    norms = {
        group: torch.nn.utils.get_total_norm(grads, norm_type) for group, grads in groups.items()
    }
    result = (
        {"total": float(torch.nn.utils.get_total_norm(list(norms.values()), norm_type))}
        if norms
        else {}
    )
    result.update({group: float(norm) for group, norm in norms.items()})
    return result


class GradNormMonitor(Callback):
    """Logs `train/grad_norm/total` and `train/grad_norm/<group>` every `log_every_n_steps`.

    Args:
        log_every_n_steps: logging period in optimizer steps.
        depth: how many dotted name parts make a group (1: top-level submodules).
        norm_type: p of the p-norm.
        on_nonfinite: `stop` (checkpoint + error), `skip` (drop this step) or `warn`.
    """

    def __init__(
        self,
        log_every_n_steps: int = 25,
        depth: int = 1,
        norm_type: float = 2.0,
        on_nonfinite: Literal["stop", "skip", "warn"] = "stop",
    ) -> None:
        self.log_every_n_steps = log_every_n_steps
        self.depth = depth
        self.norm_type = norm_type
        self.on_nonfinite = on_nonfinite
        self.skipped_steps = 0
        self._bad_loss: float | None = None

    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        self._bad_loss = None if torch.isfinite(loss).all() else float(loss.detach().float().sum())

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer
    ) -> None:
        problem = self._find_problem(pl_module)
        if problem is not None:
            self._handle(trainer, pl_module, problem)
            return
        if trainer.global_step % self.log_every_n_steps == 0:
            norms = grouped_grad_norms(pl_module, self.depth, self.norm_type)
            pl_module.log_dict(
                {f"train/grad_norm/{k}": v for k, v in norms.items()}, on_step=True, on_epoch=False
            )

    def _find_problem(self, pl_module: LightningModule) -> str | None:
        if self._bad_loss is not None:
            return f"loss is {self._bad_loss}"
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if not grads or torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            return None  # one fused norm per step; a NaN/Inf anywhere makes it non-finite
        for name, param in pl_module.named_parameters():
            if param.grad is not None and not torch.isfinite(param.grad).all():
                return f"gradient of parameter '{name}' is non-finite"
        return None

    def _handle(self, trainer: Trainer, pl_module: LightningModule, problem: str) -> None:
        where = f"at epoch {trainer.current_epoch}, step {trainer.global_step}"
        for param in pl_module.parameters():
            param.grad = None
        if self.on_nonfinite == "skip":
            self.skipped_steps += 1
            rank_zero_warn(f"{problem} {where}: step skipped ({self.skipped_steps} so far)")
            pl_module.log(
                "train/nonfinite_skipped", float(self.skipped_steps), on_step=True, on_epoch=False
            )
            return
        if self.on_nonfinite == "warn":
            rank_zero_warn(f"{problem} {where}: gradients dropped for this step")
            return
        path = checkpoint_dir(trainer) / f"nonfinite-step={trainer.global_step}.ckpt"
        trainer.save_checkpoint(path)
        raise NonFiniteError(
            f"training stopped: {problem} {where}. The weights before this step are saved "
            f"in {path}; lower the learning rate or inspect the data, then resume with --ckpt_path {path}"
        )

    def state_dict(self) -> dict:
        return {"skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict) -> None:
        self.skipped_steps = state_dict.get("skipped_steps", 0)
