"""The PPO trader (and its A2C baseline) as a LightningModule.

One Lightning epoch is one PPO iteration: `MarketDataModule` collects a rollout with this
module's policy and serves minibatches; every `training_step` is one optimizer step on one
minibatch. Validation and test walk a whole split deterministically and report trading
metrics beside buy-and-hold on the same bars.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch.distributions import Categorical

from callbacks.tensorboard import log_dashboard, log_figure, log_table
from datamodules.market import MarketSpec
from datamodules.market.env import position_returns
from datamodules.market.series import MarketSeries
from modules.epoch_means import EpochMeans
from modules.errors import ConfigError
from modules.ppo.evaluation import Walk, greedy_walk
from modules.ppo.losses import (
    a2c_policy_loss,
    explained_variance,
    normalize,
    ppo_policy_loss,
    value_loss,
)
from modules.ppo.networks import BarPolicy, PolicyValueNet
from modules.ppo.plots import DASHBOARD, equity_figure
from modules.ppo.trading_metrics import trading_metrics


class PPOTrader(LightningModule):
    """Args:
    spec: linked from the datamodule (features, window, positions, cost).
    width, depth, kernel_size, dropout, hidden, shared_trunk: the network (see networks.py).
    loss: `ppo` (clipped surrogate) or `a2c` (plain policy gradient) on the same data.
    lr, weight_decay, anneal_lr: AdamW (eps 1e-5); LR falls linearly to 0 over max_epochs.
    clip_coef, clip_value: surrogate clip range, and whether the value loss is clipped too.
    ent_coef, vf_coef, norm_adv: entropy bonus, value-loss weight, advantage normalization.
    target_kl: end an epoch's updates early once approx-KL exceeds 1.5 x this (None: never).
    aux_sign_coef, aux_volatility_coef: weights of the auxiliary objectives (0: off).
    ensemble: checkpoint paths whose action probabilities are averaged with this model's at
        test/predict time.
    figure_every_n_epochs: how often validation draws the equity curve.
    """

    def __init__(
        self,
        spec: MarketSpec | None = None,
        width: int = 32,
        depth: int = 4,
        kernel_size: int = 4,
        dropout: float = 0.0,
        hidden: int = 64,
        shared_trunk: bool = True,
        loss: Literal["ppo", "a2c"] = "ppo",
        lr: float = 3e-4,
        weight_decay: float = 0.0,
        anneal_lr: bool = True,
        clip_coef: float = 0.2,
        clip_value: bool = True,
        ent_coef: float = 0.01,
        vf_coef: float = 0.5,
        norm_adv: bool = True,
        target_kl: float | None = None,
        aux_sign_coef: float = 0.0,
        aux_volatility_coef: float = 0.0,
        ensemble: list[str] | None = None,
        figure_every_n_epochs: int = 5,
    ) -> None:
        super().__init__()
        if spec is None:
            raise ConfigError("model.spec is linked from a MarketDataModule; use it as `data`")
        self.save_hyperparameters()
        self.spec = spec
        self.net = PolicyValueNet(
            spec.num_features,
            spec.window,
            spec.positions,
            width,
            depth,
            kernel_size,
            dropout,
            hidden,
            shared_trunk,
        )
        self.val_sharpe_history: list[float] = []
        self._stop_updates = False
        self._step_metrics = EpochMeans()
        self._checkpoint_epoch: int | str = "none (untrained)"
        # lets Lightning's model summary show input/output shapes and FLOPs
        self.example_input_array = (torch.zeros(1, spec.num_features, spec.window), torch.zeros(1))
        self._ensemble: list[PolicyValueNet] = []

    def forward(self, obs: torch.Tensor, held: torch.Tensor):
        """obs [B, F, W] windows, held [B] -> logits, value, aux (see `PolicyValueNet`)."""
        return self.net(obs, held)

    def bar_policy(self, features: torch.Tensor) -> BarPolicy:
        """No-grad policy over bars of one series (features [T, F]); rollouts use it."""
        return self.net.bar_policy(features)

    def on_fit_start(self) -> None:
        log_dashboard(self.trainer, DASHBOARD)

    # ---- training -----------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._stop_updates = False
        self._step_metrics.reset()

    def on_train_batch_start(self, batch, batch_idx: int) -> int | None:
        return -1 if self._stop_updates else None  # -1 ends this epoch's updates (target KL)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        encoded = self.net.encode(batch["features"], batch["bars"])
        logits, value, aux = self.net.heads(encoded, batch["held"])
        dist = Categorical(logits=logits)
        new_logprob = dist.log_prob(batch["actions"])
        entropy = dist.entropy().mean()
        advantages = normalize(batch["advantages"]) if hp.norm_adv else batch["advantages"]
        if hp.loss == "ppo":
            policy = ppo_policy_loss(new_logprob, batch["logprobs"], advantages, hp.clip_coef)
        else:
            policy = a2c_policy_loss(new_logprob, batch["logprobs"], advantages)
        clip = hp.clip_coef if hp.clip_value and hp.loss == "ppo" else None
        v_loss = value_loss(value, batch["values"], batch["returns"], clip)
        aux_losses = self._aux_losses(aux, batch)
        loss = policy["policy_loss"] - hp.ent_coef * entropy + hp.vf_coef * v_loss
        loss = (
            loss
            + hp.aux_sign_coef * aux_losses["aux_sign"]
            + hp.aux_volatility_coef * aux_losses["aux_volatility"]
        )
        metrics = {"loss": loss, "value_loss": v_loss, "entropy": entropy, **policy, **aux_losses}
        lr = self.optimizers().param_groups[0]["lr"]  # the rate this step used
        metrics["lr"] = torch.tensor(lr, device=loss.device)
        self._step_metrics.add(metrics, weight=len(value))
        if hp.target_kl is not None:
            kl = self.trainer.strategy.reduce(policy["approx_kl"].detach(), reduce_op="mean")
            self._stop_updates = bool(kl > 1.5 * hp.target_kl)
        return loss

    def _aux_losses(
        self, aux: torch.Tensor | None, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """BCE on next-k return sign, MSE on next-k realized volatility; bars without targets masked."""
        zero = torch.zeros((), device=batch["held"].device)
        if aux is None:
            return {"aux_sign": zero, "aux_volatility": zero}
        sign, volatility = batch["aux_sign"], batch["aux_volatility"]
        known = ~torch.isnan(sign) & ~torch.isnan(volatility)
        if not known.any():
            return {"aux_sign": zero, "aux_volatility": zero}
        return {
            "aux_sign": F.binary_cross_entropy_with_logits(aux[known, 0], sign[known]),
            "aux_volatility": F.mse_loss(aux[known, 1], volatility[known]),
        }

    def on_train_epoch_end(self) -> None:
        datamodule = self.trainer.datamodule
        rollout = datamodule.last_rollout
        if rollout is None:
            return
        series = datamodule.split("train")
        ppy = series.periods_per_year
        # Buy-and-hold on the same bars, measured the same way: per env, then averaged, paying
        # the entry fee wherever an episode starts (flat), as the strategy does.
        held_before = torch.ones_like(rollout.positions)
        held_before[0] = 0.0
        held_before[1:][rollout.dones[:-1]] = 0.0
        fill = series.fill_returns[rollout.bars]
        long = torch.ones_like(held_before)
        hold = position_returns(long, held_before, fill, self.spec.cost_bps * 1e-4)
        envs = range(rollout.bars.shape[1])
        per_env = [
            trading_metrics(rollout.net_returns[:, e], rollout.positions[:, e], ppy) for e in envs
        ]
        hold_sharpe = [trading_metrics(hold[:, e], long[:, e], ppy)["sharpe"] for e in envs]
        metrics = {k: sum(m[k] for m in per_env) / len(per_env) for k in per_env[0]}
        metrics["bh_sharpe"] = sum(hold_sharpe) / len(hold_sharpe)
        if len(rollout.episode_returns):
            metrics["episode_return"] = float(rollout.episode_returns.mean())
        metrics["explained_variance"] = explained_variance(
            rollout.values.reshape(-1), rollout.returns.reshape(-1)
        )
        metrics["env_steps_per_s"] = rollout.steps_per_s
        metrics.update(self._step_metrics.means())
        self.log_dict({f"train/{k}": float(v) for k, v in metrics.items()}, sync_dist=True)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=hp.lr,
            eps=1e-5,
            weight_decay=hp.weight_decay,
            # One kernel for all parameters (~1 ms less per step on CPU). Lightning cannot clip
            # gradients with a fused optimizer under mixed precision, so only in full precision.
            fused=str(self.trainer.precision) in ("32-true", "64-true"),
        )
        if not hp.anneal_lr:
            return optimizer
        epochs = max(self.trainer.max_epochs or 1, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: max(1.0 - epoch / epochs, 0.0)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch"},
        }

    # ---- evaluation ---------------------------------------------------------------------
    def ensemble_probs(self, features: torch.Tensor) -> Callable[..., torch.Tensor]:
        """probs(bars, held) -> [B, A]: action probabilities averaged over the ensemble."""
        policies = [net.bar_policy(features) for net in (self.net, *self._ensemble)]

        def probs(bars: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.softmax(p(bars, held)[0], dim=-1) for p in policies]).mean(0)

        return probs

    def walk(self, series: MarketSeries) -> Walk:
        probs = self.ensemble_probs(series.features)
        return greedy_walk(probs, series, self.spec.positions, self.spec.cost_bps)

    def _evaluate(self, series: MarketSeries, stage: str) -> dict[str, float]:
        walk = self.walk(series)
        ppy = series.periods_per_year
        metrics = trading_metrics(walk.net_returns, walk.positions, ppy)
        hold = trading_metrics(walk.hold_returns, torch.ones_like(walk.positions), ppy)
        metrics.update(
            {f"bh_{k}": hold[k] for k in ("total_return", "sharpe", "sortino", "max_drawdown")}
        )
        for key, value in metrics.items():
            self.log(
                f"{stage}/{key}",
                float(value),
                sync_dist=True,
                batch_size=1,
                prog_bar=key == "sharpe",
            )
        epoch = self.current_epoch
        if stage == "test" or (
            not self.trainer.sanity_checking and epoch % self.hparams.figure_every_n_epochs == 0
        ):
            # `test` does not restore the loop's epoch: name the checkpoint's instead
            trained = (
                f"after epoch {self._checkpoint_epoch}" if stage == "test" else f"epoch {epoch}"
            )
            log_figure(
                self.trainer, f"{stage}/equity", equity_figure(walk, f"{stage} split, {trained}")
            )
        return metrics

    def validation_step(self, series: MarketSeries, batch_idx: int) -> None:
        metrics = self._evaluate(series, "val")
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return  # the epoch-to-epoch history is about training, not a one-off `validate`
        history = self.val_sharpe_history
        history.append(metrics["sharpe"])
        consistency = {"sharpe_best": max(history)}
        if len(history) > 1:
            consistency["sharpe_epoch_std"] = float(torch.tensor(history).std())
            consistency["sharpe_change"] = abs(history[-1] - history[-2])
        self.log_dict({f"val/{k}": v for k, v in consistency.items()}, sync_dist=True, batch_size=1)

    def on_test_start(self) -> None:
        self._load_ensemble()

    def on_predict_start(self) -> None:
        self._load_ensemble()

    def test_step(self, series: MarketSeries, batch_idx: int) -> None:
        metrics = self._evaluate(series, "test")
        rows = [
            (k, metrics[k], metrics.get(f"bh_{k}", ""))
            for k in ("total_return", "sharpe", "sortino", "max_drawdown")
        ]
        rows += [(k, metrics[k], "") for k in ("hit_rate", "turnover", "exposure")]
        log_table(self.trainer, "test/summary", ["metric", "strategy", "buy & hold"], rows)

    def predict_step(self, series: MarketSeries, batch_idx: int) -> dict[str, torch.Tensor]:
        walk = self.walk(series)
        return {
            "timestamps": walk.timestamps,
            "positions": walk.positions,
            "net_returns": walk.net_returns,
            "probabilities": walk.probabilities,
        }

    def _load_ensemble(self) -> None:
        self._ensemble = []
        for path in self.hparams.ensemble or []:
            if not Path(path).is_file():
                raise ConfigError(f"model.ensemble: checkpoint {path} does not exist")
            member = type(self).load_from_checkpoint(path, map_location=self.device)
            if member.spec != self.spec:
                raise ConfigError(
                    f"model.ensemble: {path} was trained on different data ({member.spec} vs {self.spec})"
                )
            self._ensemble.append(member.net.eval())

    # ---- checkpoint state -----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_sharpe_history"] = list(self.val_sharpe_history)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_sharpe_history = list(checkpoint.get("val_sharpe_history", []))
        self._checkpoint_epoch = checkpoint.get("epoch", "?")
