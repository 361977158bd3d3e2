"""Checkpoint resumption is exact, and DDP runs on CPU (gloo) with rank-0-only logs."""

from __future__ import annotations

import pytest
import torch

import datamodules.example.blobs  # noqa: F401  (registers BlobsSpec for weights_only loads)
from main import main
from tests.conftest import DDP_ON_TWO_CPUS, conf, run_main


def _last(tmp_path, version: int) -> dict:
    path = tmp_path / f"runs/example/version_{version}/checkpoints/last.ckpt"
    return torch.load(path, weights_only=True)


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path):
    epochs = ["--trainer.max_epochs", "4"]
    straight = main(["fit", "--config", conf("example.yaml"), *epochs])
    main(
        [
            "fit",
            "--config",
            conf("example.yaml"),
            *epochs,
            "--trainer.callbacks+=tests.helpers.StopAfterEpoch",
            "--trainer.callbacks.epochs=2",
        ]
    )
    assert _last(tmp_path, 1)["epoch"] == 1  # it really stopped after 2 of 4 epochs
    resumed = main(
        [
            "fit",
            "--config",
            str(tmp_path / "runs/example/version_1/config.yaml"),
            "--ckpt_path",
            "last",
        ]
    )

    a, b = _last(tmp_path, 0), _last(tmp_path, 1)
    assert a["global_step"] == b["global_step"] == straight.trainer.global_step
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    for key in ("val/loss", "val/acc", "train/loss_epoch"):
        assert float(straight.trainer.callback_metrics[key]) == float(
            resumed.trainer.callback_metrics[key]
        ), key
    # the resumed run kept writing into the same TensorBoard run
    assert sorted(p.name for p in (tmp_path / "runs/example").iterdir()) == [
        "version_0",
        "version_1",
    ]
    assert len(list((tmp_path / "runs/example/version_1").glob("events.out.tfevents.*"))) >= 2


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    result = run_main("fit", "--config", conf("example.yaml"), *DDP_ON_TWO_CPUS)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "runs/example").iterdir())
    assert runs == ["version_0"], runs  # both ranks agreed on one run directory
    run = tmp_path / "runs/example/version_0"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1  # only rank 0 writes logs
    state = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    # 168 train samples / 16 per batch / 2 ranks = 6 steps per epoch, 2 epochs
    assert state["global_step"] == 12
    assert "GLOBAL_RANK: 1" in result.stderr + result.stdout or "world_size=2" in (
        result.stderr + result.stdout
    ).replace(" ", "")
