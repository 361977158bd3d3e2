"""The trader's DataModule: market splits for evaluation, on-policy rollouts for training.

Training batches come from `RolloutEpochs`: at the start of every epoch it collects
`rollout_steps` x `num_envs` steps on the train split with the current policy, computes GAE,
and serves `ppo_epochs` shuffled passes of minibatches (one optimizer step each). Its
randomness is seeded from (seed, rank, epoch), so a resumed run and every DDP rank get the
rollouts an uninterrupted run would have had, with distinct envs per rank.

Splits are loaded lazily per stage: `fit` reads the train and val rows only. Of the test rows
only the timestamps are parsed (to place the split); their prices are never read. The normalizer is fitted on train rows and
saved in checkpoints, so `test`/`predict` from a checkpoint use the exact training statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, IterableDataset

from datamodules.market.env import MarketEnv
from datamodules.market.features import FEATURE_NAMES, Normalizer, bar_features
from datamodules.market.ohlcv import load_ohlcv, read_timestamps, resolve_source
from datamodules.market.rollout import Rollout, collect, minibatches
from datamodules.market.series import MarketSeries
from datamodules.market.splits import SplitRows, chronological_splits
from datamodules.market.synthetic import ar1_market
from modules.errors import ConfigError


@dataclass(frozen=True)
class MarketSpec:
    """What the trader needs to know about the market (linked to `model.spec`)."""

    num_features: int
    window: int
    positions: tuple[float, ...]
    cost_bps: float

    @property
    def num_actions(self) -> int:
        return len(self.positions)


torch.serialization.add_safe_globals([MarketSpec])


class MarketDataModule(LightningDataModule):
    """Args:
    dataset: `googl` or `eurusd` (files shipped with gym-anytrading), `synthetic` (an AR(1)
        market with a planted signal), or the path of any OHLCV CSV.
    window: bars per observation. vol_window: bars for the volume z-score and volatility.
    val_fraction, test_fraction: chronological split sizes; or val_start/test_start dates.
    embargo: rows dropped between splits (at least `window`, the default).
    num_envs, rollout_steps, episode_length: rollout shape (steps per env per epoch).
    ppo_epochs, minibatch_size: passes over each rollout, and their minibatch size.
    gamma, gae_lambda: discount and GAE(lambda). reward_scale: reward multiplier for learning.
    cost_bps: fee per unit of position change, in basis points. long_only: flat/long only.
    aux_horizon: bars ahead for the auxiliary targets (sign of return, realized volatility).
    synthetic_rows, synthetic_phi, synthetic_sigma: the `synthetic` market's AR(1) parameters.
    """

    def __init__(
        self,
        dataset: str = "googl",
        window: int = 32,
        vol_window: int = 20,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        val_start: str | None = None,
        test_start: str | None = None,
        embargo: int | None = None,
        num_envs: int = 32,
        rollout_steps: int = 64,
        episode_length: int = 64,
        ppo_epochs: int = 4,
        minibatch_size: int = 256,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        reward_scale: float = 100.0,
        cost_bps: float = 1.0,
        long_only: bool = False,
        aux_horizon: int = 5,
        predict_split: str = "test",
        seed: int = 0,
        synthetic_rows: int = 4000,
        synthetic_phi: float = 0.3,
        synthetic_sigma: float = 0.01,
    ) -> None:
        super().__init__()
        if embargo is not None and embargo < window:
            raise ConfigError(f"data.embargo={embargo} must be at least data.window={window}")
        if vol_window < 2:
            raise ConfigError(
                f"data.vol_window={vol_window} must be at least 2 (a volatility needs 2 returns)"
            )
        if aux_horizon < 2:
            raise ConfigError(
                f"data.aux_horizon={aux_horizon} must be at least 2 (volatility needs 2 returns)"
            )
        if predict_split not in ("train", "val", "test"):
            raise ConfigError(f"data.predict_split={predict_split!r} must be train, val or test")
        if dataset != "synthetic":
            resolve_source(dataset)  # a missing file fails now, before any run directory is made
        self.save_hyperparameters()
        positions = (0.0, 1.0) if long_only else (-1.0, 0.0, 1.0)
        self.spec = MarketSpec(len(FEATURE_NAMES), window, positions, cost_bps)
        self.normalizer: Normalizer | None = None
        self.frames: dict[str, pd.DataFrame] = {}
        self.series: dict[str, MarketSeries] = {}
        self.last_rollout: Rollout | None = None
        self._source: Path | pd.DataFrame | None = None
        self._rows: SplitRows | None = None

    # ---- data loading -------------------------------------------------------------------
    @property
    def source_name(self) -> str:
        return str(self.hparams.dataset)

    def split_rows(self) -> SplitRows:
        if self._rows is None:
            hp = self.hparams
            if hp.dataset == "synthetic":
                self._source = ar1_market(
                    hp.synthetic_rows, hp.synthetic_phi, hp.synthetic_sigma, hp.seed
                )
                timestamps = self._source.index
            else:
                self._source = resolve_source(hp.dataset)
                timestamps = read_timestamps(self._source)
            self._rows = chronological_splits(
                timestamps,
                min_rows=hp.vol_window + hp.window + hp.episode_length + 2,
                embargo=hp.window if hp.embargo is None else hp.embargo,
                val_fraction=hp.val_fraction,
                test_fraction=hp.test_fraction,
                val_start=hp.val_start,
                test_start=hp.test_start,
                source=self.source_name,
            )
        return self._rows

    def frame(self, split: str) -> pd.DataFrame:
        """The split's bars; only this split's rows of the file are read."""
        if split not in self.frames:
            start, stop = self.split_rows()[split]
            if isinstance(self._source, pd.DataFrame):
                self.frames[split] = self._source.iloc[start:stop]
            else:
                self.frames[split] = load_ohlcv(self._source, start, stop)
        return self.frames[split]

    def setup(self, stage: str) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for split in needed.get(stage, (self.hparams.predict_split,)):
            self.frame(split)

    def split(self, name: str) -> MarketSeries:
        """The split as tensors, normalized with the train statistics."""
        if name not in self.series:
            if self.normalizer is None:  # not restored from a checkpoint: fit on train rows
                self.normalizer = Normalizer.fit(
                    bar_features(self.frame("train"), self.hparams.vol_window)
                )
            hp = self.hparams
            self.series[name] = MarketSeries.build(
                self.frame(name), self.normalizer, hp.window, hp.vol_window, hp.aux_horizon
            )
        return self.series[name]

    # ---- dataloaders --------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return DataLoader(RolloutEpochs(self), batch_size=None)

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader([self.split(split)], batch_size=None, collate_fn=lambda item: item)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader(self.hparams.predict_split)

    # ---- rollouts -----------------------------------------------------------------------
    def num_minibatches(self) -> int:
        steps = self.hparams.num_envs * self.hparams.rollout_steps
        return self.hparams.ppo_epochs * math.ceil(steps / self.hparams.minibatch_size)

    def rollout_generator(self) -> torch.Generator:
        trainer = self.trainer
        rank, epoch = (trainer.global_rank, trainer.current_epoch) if trainer else (0, 0)
        return torch.Generator().manual_seed(self.hparams.seed * 1_000_003 + rank * 10_007 + epoch)

    def collect_rollout(self, policy, generator: torch.Generator) -> Rollout:
        hp = self.hparams
        env = MarketEnv(
            self.split("train"),
            hp.num_envs,
            hp.episode_length,
            self.spec.positions,
            hp.cost_bps,
            generator,
        )
        self.last_rollout = collect(
            env, policy, hp.rollout_steps, generator, hp.reward_scale, hp.gamma, hp.gae_lambda
        )
        return self.last_rollout

    # ---- checkpoint state ---------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"normalizer": self.normalizer.state_dict()} if self.normalizer is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if "normalizer" in state_dict:
            self.normalizer = Normalizer.from_state_dict(state_dict["normalizer"])
            self.series.clear()


class RolloutEpochs(IterableDataset):
    """One Lightning epoch = one rollout with the current policy, then PPO minibatches.

    The LightningModule provides `bar_policy(features [T, F])`, a no-grad policy over bars of
    that series; batches carry bar indices and the series, and the module encodes them.
    """

    def __init__(self, datamodule: MarketDataModule) -> None:
        self.datamodule = datamodule

    def __len__(self) -> int:
        return self.datamodule.num_minibatches()

    def __iter__(self):
        dm = self.datamodule
        module = dm.trainer.lightning_module
        generator = dm.rollout_generator()
        series = dm.split("train")
        was_training = module.training
        module.eval()
        act = module.bar_policy(series.features)  # encodes the split once for the rollout

        def policy(bars: torch.Tensor, held: torch.Tensor):
            logits, value = act(bars, held)[:2]
            return logits.cpu(), value.cpu()

        rollout = dm.collect_rollout(policy, generator)
        module.train(was_training)

        def extras(bars: torch.Tensor) -> dict[str, torch.Tensor]:
            return {
                "features": series.features,  # the same tensor every batch, not a copy
                "aux_sign": series.aux_sign[bars],
                "aux_volatility": series.aux_volatility[bars],
            }

        hp = dm.hparams
        yield from minibatches(rollout, extras, hp.ppo_epochs, hp.minibatch_size, generator)
