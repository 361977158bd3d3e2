"""The one LightningCLI behind every workload.

Subclass mode: `--model`/`--data` (or `class_path` in YAML) pick any LightningModule and
LightningDataModule. Every datamodule exposes `spec` (the shapes a model needs: channels,
vocabulary, widths) and every model takes `spec`; the link below carries it across, so shapes
are never repeated in YAML.

What this class adds to LightningCLI, each for a user-visible reason:
- run directories: an unpinned TensorBoard version is pinned before the config is saved, so
  `<run>/config.yaml` names its own directory and `fit --config <run>/config.yaml --ckpt_path
  last` continues that run in the same TensorBoard run. `test`/`validate`/`predict` without a
  pinned version use the newest existing run of that name, so `test --config configs/x.yaml
  --ckpt_path best` tests what `fit` just trained;
- `--ckpt_path best|last` resolve to files of that run, with a clear error when missing;
- persistent callbacks (RNG state for exact resume, end-of-run summary) and a Rich progress
  bar unless `trainer.enable_progress_bar` is false.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

from callbacks.progress import ProgressBar
from callbacks.rng_state import RNGStateCheckpoint
from callbacks.summary import RunSummary
from modules.errors import ConfigError

# Known-harmless warnings that would only confuse a new user: a torch/Lightning internal
# deprecation, and the rollout dataset's `__len__` (exact here: one process builds each rollout).
for _message in (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*IterableDataset. has .__len__. defined.*",
):
    warnings.filterwarnings("ignore", message=_message)

# ... and Lightning's advertisement for a cloud logger, printed at every start.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: not record.getMessage().startswith("\N{ELECTRIC LIGHT BULB} Tip")
)

RUN_VERSION_ENV = "NIVESHI_RUN_VERSION"  # hands the pinned version to DDP child processes


class NiveshiCLI(LightningCLI):
    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False},
            trainer_defaults={
                "logger": {
                    "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                    "init_args": {
                        "save_dir": "runs",
                        "name": "default",
                        "default_hp_metric": False,
                    },
                },
                "callbacks": [RNGStateCheckpoint(), RunSummary()],
            },
            args=args,
            run=run,
        )

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
        if config.get("enable_progress_bar") is not False:
            callbacks = [*callbacks, ProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def _parse_ckpt_path(self) -> None:
        """Keep the config in charge when `--ckpt_path` names a file.

        LightningCLI would overwrite the model's arguments with the hyperparameters stored in
        the checkpoint, silently undoing `--model.init_args.lr 1e-4` on a resume (and only for
        explicit paths, not for best/last). Here the config decides the model; the checkpoint
        supplies weights and training state.
        """

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.spec", "model.init_args.spec", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        logger = config.trainer.logger
        if not _is_tensorboard(logger):
            return
        init = logger.init_args
        if init.version is None:
            # DDP children (LOCAL_RANK set by the launcher) reuse the version rank 0 picked.
            inherited = os.environ.get(RUN_VERSION_ENV) if "LOCAL_RANK" in os.environ else None
            init.version = inherited or _pick_version(
                Path(init.save_dir) / init.name, new=self.subcommand in (None, "fit")
            )
        os.environ[RUN_VERSION_ENV] = str(init.version)

    def _resolve_ckpt_alias(self) -> None:
        """Map `--ckpt_path best|last` to the files of this run (works in a fresh process)."""
        config = self.config_init[self.subcommand]
        alias = config.get("ckpt_path")
        if alias not in ("best", "last"):
            return
        ckpt_dir = _checkpoint_dir(self.trainer)
        path = ckpt_dir / f"{alias}.ckpt" if ckpt_dir else None
        if path is None or not path.is_file():
            raise ConfigError(
                f"--ckpt_path {alias}: no {alias}.ckpt in {ckpt_dir}; train first with "
                "`fit`, or pass the checkpoint's path"
            )
        config["ckpt_path"] = str(path)

    # LightningCLI calls `before_<subcommand>` right before running it.
    before_fit = before_validate = before_test = before_predict = _resolve_ckpt_alias


def _is_tensorboard(logger: Any) -> bool:
    return getattr(logger, "class_path", "").endswith("TensorBoardLogger")


def _pick_version(run_root: Path, new: bool) -> int:
    """Next free `version_N` for a new run, else the newest existing one (0 if none)."""
    versions = [
        int(m.group(1))
        for p in (run_root.iterdir() if run_root.is_dir() else [])
        if (m := re.fullmatch(r"version_(\d+)", p.name))
    ]
    if not versions:
        return 0
    return max(versions) + 1 if new else max(versions)


def _checkpoint_dir(trainer) -> Path | None:
    """Where this run's ModelCheckpoint writes: its dirpath, or `<log_dir>/checkpoints`."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.dirpath:
        return Path(callback.dirpath)
    if trainer.logger is not None and trainer.logger.log_dir:
        return Path(trainer.logger.log_dir) / "checkpoints"
    return None
