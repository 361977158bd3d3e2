"""Grad-norm and activation monitors against hand computations; the NaN guard end to end."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from callbacks.activations import ActivationMonitor, activation_stats
from callbacks.grad_norm import GradNormMonitor, grouped_grad_norms
from main import main
from modules.errors import NonFiniteError
from tests.conftest import conf, run_main


def _model_with_grads() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    model(torch.randn(5, 4)).pow(2).sum().backward()
    return model


def test_grad_norms_match_torch_and_hand_computation():
    model = _model_with_grads()
    norms = grouped_grad_norms(model, depth=1)
    grads = [p.grad for p in model.parameters()]
    assert norms["total"] == pytest.approx(float(torch.nn.utils.get_total_norm(grads)), rel=1e-6)
    first = model[0]
    by_hand = math.sqrt(float(first.weight.grad.pow(2).sum() + first.bias.grad.pow(2).sum()))
    assert norms["0"] == pytest.approx(by_hand, rel=1e-6)
    assert set(norms) == {"total", "0", "2"}  # ReLU has no parameters
    per_param = grouped_grad_norms(model, depth=2)
    assert per_param["0.weight"] == pytest.approx(float(first.weight.grad.norm()), rel=1e-6)
    inf_norm = grouped_grad_norms(model, norm_type=math.inf)["total"]
    assert inf_norm == pytest.approx(max(float(g.abs().max()) for g in grads))


def test_activation_stats_match_hand_computation():
    x = torch.tensor([0.0, 0.5, -1.0, 2.0])
    stats = activation_stats(x, saturation_threshold=0.99)
    mean = 1.5 / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in [0.0, 0.5, -1.0, 2.0]) / 3)
    assert stats == pytest.approx(
        {"mean": mean, "std": std, "max_abs": 2.0, "frac_zero": 0.25, "frac_saturated": 0.5}
    )


def test_activation_monitor_hooks_only_the_logged_step_and_logs_the_module_output():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    logged: list[tuple[dict, int]] = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((metrics, step)))
    monitor = ActivationMonitor(module_types=["Tanh"], log_every_n_steps=2)
    x = torch.randn(8, 3)
    for step in range(3):
        trainer = SimpleNamespace(global_rank=0, global_step=step, logger=logger, loggers=[])
        monitor.on_train_batch_start(trainer, model, None, step)
        hooked = len(model[1]._forward_hooks)
        model(x)
        monitor.on_train_batch_end(trainer, model, None, None, step)
        assert hooked == (1 if step % 2 == 0 else 0)
        assert len(model[1]._forward_hooks) == 0
    assert [step for _, step in logged] == [0, 2]
    expected = activation_stats(torch.tanh(model[0](x)), 0.99)
    metrics = logged[-1][0]
    for stat, value in expected.items():
        assert metrics[f"train/activations/1/{stat}"] == pytest.approx(value, rel=1e-5)


def test_activation_monitor_is_silent_on_other_ranks():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    monitor = ActivationMonitor(module_types=["Tanh"], log_every_n_steps=1)
    monitor.on_train_batch_start(SimpleNamespace(global_rank=1, global_step=0), model, None, 0)
    assert len(model[1]._forward_hooks) == 0


NAN_MODEL = ["--model", "tests.helpers.NaNAtStep", "--model.init_args.nan_step", "3"]


def test_nan_loss_stops_with_message_and_usable_checkpoint(tmp_path):
    with pytest.raises(NonFiniteError, match="loss is nan at epoch 0, step 3") as error:
        main(["fit", "--config", conf("example.yaml"), *NAN_MODEL])
    ckpt = tmp_path / "runs/example/version_0/checkpoints/nonfinite-step=3.ckpt"
    assert str(ckpt.relative_to(tmp_path)) in str(error.value)
    state = torch.load(ckpt, weights_only=True)
    assert state["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())
    # usable: training resumes from it (here with the healthy model) and finishes
    resumed = main(["fit", "--config", conf("example.yaml"), "--ckpt_path", str(ckpt)])
    assert resumed.trainer.state.finished and resumed.trainer.global_step > 3


def test_nan_stop_from_the_command_line_is_one_line_exit_3():
    result = run_main("fit", "--config", conf("example.yaml"), *NAN_MODEL)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_nan_skip_mode_drops_the_step_and_keeps_training(tmp_path):
    cli = main(
        [
            "fit",
            "--config",
            conf("example.yaml"),
            *NAN_MODEL,
            "--trainer.callbacks",
            '[{"class_path": "callbacks.grad_norm.GradNormMonitor", "init_args": {"on_nonfinite": "skip"}}]',
        ]
    )
    monitors = [c for c in cli.trainer.callbacks if type(c).__name__ == "GradNormMonitor"]
    assert [(m.on_nonfinite, m.skipped_steps) for m in monitors] == [("skip", 1)]
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())
    assert cli.trainer.state.finished


def test_nonfinite_gradient_names_the_parameter_and_skip_drops_all_grads():
    model = _model_with_grads()
    model[2].bias.grad[0] = float("inf")
    monitor = GradNormMonitor(on_nonfinite="skip")
    monitor._bad_loss = None
    assert monitor._find_problem(model) == "gradient of parameter '2.bias' is non-finite"
    logged = []
    model.log = lambda name, value, **kwargs: logged.append((name, value))
    trainer = SimpleNamespace(current_epoch=0, global_step=7)
    monitor._handle(trainer, model, monitor._find_problem(model))
    assert all(p.grad is None for p in model.parameters())  # optimizers skip params without grad
    assert logged == [("train/nonfinite_skipped", 1.0)] and monitor.skipped_steps == 1
