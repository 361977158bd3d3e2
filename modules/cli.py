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
- `--ckpt_path best|last` resolve to files of that run; any checkpoint path is checked before
  Lightning loads it (a missing file, a file that is not a checkpoint, or weights of another
  shape are one-line errors, not tracebacks);
- only `fit` writes `<run>/config.yaml` (a `test` of the run must not replace the config that
  trained it), and `fit` refuses to restart a run that has checkpoints unless it resumes it;
- a `fit` that fails on a user error before writing its config leaves no empty run behind;
- persistent callbacks (RNG state for exact resume, end-of-run summary) and a Rich progress
  bar unless `trainer.enable_progress_bar` is false.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from callbacks.checkpoint import checkpoint_dir
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


class SaveFitConfig(SaveConfigCallback):
    """Writes `<run>/config.yaml` for `fit` only: it is the record of what trained the run."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            super().setup(trainer, pl_module, stage)


class NiveshiCLI(LightningCLI):
    # The run directory the current `fit` pinned as new; `discard_unused_run` removes it if the
    # run failed before writing anything of its own there (the logger creates it early).
    new_run_dir: Path | None = None

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            save_config_callback=SaveFitConfig,
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
        fitting = self.subcommand in (None, "fit")
        is_child = "LOCAL_RANK" in os.environ  # a DDP process started by the launcher
        run_root = Path(init.save_dir) / init.name
        if init.version is None:
            # DDP children reuse the version rank 0 picked.
            inherited = os.environ.get(RUN_VERSION_ENV) if is_child else None
            init.version = inherited or _pick_version(run_root, new=fitting)
            if fitting and not is_child:
                NiveshiCLI.new_run_dir = run_root / f"version_{init.version}"
        elif fitting and not is_child and config.get("ckpt_path") is None:
            checkpoints = run_root / f"version_{init.version}" / "checkpoints"
            if checkpoints.is_dir() and any(checkpoints.iterdir()):
                raise ConfigError(
                    f"{checkpoints.parent} already has checkpoints: add --ckpt_path last to "
                    "resume it, or --trainer.logger.init_args.version null to start a new run"
                )
        os.environ[RUN_VERSION_ENV] = str(init.version)

    def _resolve_ckpt_path(self) -> None:
        """Map `--ckpt_path best|last` to the files of this run (works in a fresh process),
        and check that any checkpoint path fits the model before Lightning loads it."""
        config = self.config_init[self.subcommand]
        given = config.get("ckpt_path")
        if given is None:
            return
        if given in ("best", "last"):
            ckpt_dir = checkpoint_dir(self.trainer)
            path = ckpt_dir / f"{given}.ckpt"
            if not path.is_file():
                raise ConfigError(
                    f"--ckpt_path {given}: no {given}.ckpt in {ckpt_dir}; train first with "
                    "`fit`, or pass the checkpoint's path"
                )
            config["ckpt_path"] = str(path)
        _check_checkpoint(Path(config["ckpt_path"]), self.model)

    # LightningCLI calls `before_<subcommand>` right before running it.
    before_fit = before_validate = before_test = before_predict = _resolve_ckpt_path


def discard_unused_run() -> None:
    """Remove the run directory a failed `fit` pinned, if nothing of the run was written there.

    The logger creates the directory (with an event file) before data is set up, so a bad CSV
    would otherwise leave an empty run that `--ckpt_path best` then picks as the newest.
    """
    run = NiveshiCLI.new_run_dir
    NiveshiCLI.new_run_dir = None
    if run is not None and run.is_dir():
        if not (run / "config.yaml").exists() and not (run / "checkpoints").exists():
            shutil.rmtree(run)
            for parent in (run.parent, run.parent.parent):  # `runs/<name>`, `runs` if now empty
                if parent.is_dir() and not any(parent.iterdir()):
                    parent.rmdir()


def _check_checkpoint(path: Path, model: torch.nn.Module) -> None:
    """A one-line ConfigError unless `path` is a Lightning checkpoint whose weights fit `model`."""
    if not path.is_file():
        raise ConfigError(f"--ckpt_path {path}: no such file")
    try:  # mmap: reads the index, not the tensors; weights_only: no code runs
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as error:  # noqa: BLE001 (any load failure means "not a checkpoint")
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise ConfigError(f"--ckpt_path {path}: not a readable checkpoint ({first_line})") from None
    weights = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict):
        raise ConfigError(f"--ckpt_path {path}: not a Lightning checkpoint (no state_dict)")
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in weights:
            raise ConfigError(
                f"--ckpt_path {path}: has no weights for {name}; was it trained with another model?"
            )
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"--ckpt_path {path}: {name} is {tuple(weights[name].shape)} there but "
                f"{tuple(tensor.shape)} in this model; use the model arguments it was trained with"
            )


def _is_tensorboard(logger: Any) -> bool:
    return getattr(logger, "class_path", "").endswith("TensorBoardLogger")


def _pick_version(run_root: Path, new: bool) -> int:
    """Next free `version_N` for a new run, else the newest trained one (with a config.yaml)."""
    found = {
        int(m.group(1)): p
        for p in (run_root.iterdir() if run_root.is_dir() else [])
        if (m := re.fullmatch(r"version_(\d+)", p.name))
    }
    if new:
        return max(found, default=-1) + 1
    trained = [v for v, p in found.items() if (p / "config.yaml").is_file()]
    return max(trained, default=max(found, default=0))
