"""The PPO trader end to end: it learns a planted signal, resumes exactly, and every subcommand works."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from datamodules.market.env import path_returns
from datamodules.market.synthetic import oracle_positions
from main import main
from modules.errors import ConfigError
from modules.ppo import PPOTrader
from modules.ppo.trading_metrics import trading_metrics
from tests.conftest import DDP_ON_TWO_CPUS, conf, run_main

SYNTHETIC = conf("ppo_synthetic.yaml")


def _oracle_val_sharpe(datamodule, phi: float) -> float:
    series = datamodule.split("val")
    bars = series.decision_bars
    position = oracle_positions(datamodule.frame("val"), bars, phi).double()
    returns = path_returns(position, series.fill_returns[bars], cost_bps=0.0)
    return trading_metrics(returns, position, series.periods_per_year)["sharpe"]


def test_policy_learns_the_planted_signal():
    cli = main(["fit", "--config", SYNTHETIC])
    oracle = _oracle_val_sharpe(cli.datamodule, phi=0.5)
    history = cli.model.val_sharpe_history
    assert oracle > 5  # the AR(1) signal is strong: the bar is meaningful
    untrained = PPOTrader(
        spec=cli.datamodule.spec, **{k: cli.model.hparams[k] for k in ("width", "depth", "hidden")}
    )
    series = cli.datamodule.split("val")
    walk = untrained.walk(series)
    untrained_sharpe = trading_metrics(walk.net_returns, walk.positions, series.periods_per_year)[
        "sharpe"
    ]
    assert untrained_sharpe < 0.5 * oracle  # so reaching 70% is learning, not luck
    assert max(history) >= 0.7 * oracle, (history, oracle)
    assert float(cli.trainer.callback_metrics["val/sharpe_best"]) == pytest.approx(max(history))


def test_fit_test_predict_and_ensemble(tmp_path):
    main(["fit", "--config", SYNTHETIC, "--trainer.max_epochs", "2"])
    test = main(["test", "--config", SYNTHETIC, "--ckpt_path", "best"])
    metrics = test.trainer.callback_metrics
    for key in (
        "test/sharpe",
        "test/bh_sharpe",
        "test/max_drawdown",
        "test/total_return",
        "test/turnover",
    ):
        assert torch.isfinite(metrics[key]), key
    ckpts = tmp_path / "runs/ppo/version_0/checkpoints"
    predictor = main(["predict", "--config", SYNTHETIC, "--ckpt_path", "last"])
    walk = predictor.trainer.predict_loop.predictions[0]
    written = pd.read_csv(tmp_path / "runs/ppo/version_0/predictions.csv")
    assert list(written.columns[:3]) == ["time", "positions", "net_returns"]
    assert written["positions"].tolist() == walk["positions"].tolist()
    assert walk["positions"].shape == walk["net_returns"].shape and set(
        walk["positions"].tolist()
    ) <= {-1.0, 0.0, 1.0}

    def run_test_with_ensemble(paths: str):
        args = ["--ckpt_path", "best", "--model.init_args.ensemble", paths]
        return main(["test", "--config", SYNTHETIC, *args])

    # a second run, other seed: the newest run (version_1) is tested, version_0 joins as a member
    main(["fit", "--config", SYNTHETIC, "--trainer.max_epochs", "1", "--seed_everything", "1"])
    ensemble = run_test_with_ensemble(f"[{ckpts / 'last.ckpt'}]")
    assert len(ensemble.model._ensemble) == 1
    series = ensemble.datamodule.split("test")
    bars, held = series.decision_bars[:5], torch.zeros(5)
    obs = series.observe(bars)
    members = [ensemble.model.net, ensemble.model._ensemble[0]]
    with torch.inference_mode():  # members were loaded inside `test`, in inference mode
        by_hand = sum(torch.softmax(net(obs, held)[0], -1) for net in members) / 2
        probs = ensemble.model.ensemble_probs(series.features)
        assert torch.allclose(probs(bars, held), by_hand, atol=1e-6)
        assert not torch.allclose(*(torch.softmax(net(obs, held)[0], -1) for net in members))
    assert torch.isfinite(ensemble.trainer.callback_metrics["test/sharpe"])
    with pytest.raises(ConfigError, match="does not exist"):
        run_test_with_ensemble("[nope.ckpt]")


def test_interrupted_and_resumed_ppo_run_equals_uninterrupted(tmp_path):
    epochs = ["--trainer.max_epochs", "4"]
    straight = main(["fit", "--config", SYNTHETIC, *epochs])
    stop = ["--trainer.callbacks+=tests.helpers.StopAfterEpoch", "--trainer.callbacks.epochs=2"]
    main(["fit", "--config", SYNTHETIC, *epochs, *stop])
    resumed = main(
        ["fit", "--config", str(tmp_path / "runs/ppo/version_1/config.yaml"), "--ckpt_path", "last"]
    )
    assert resumed.trainer.global_step == straight.trainer.global_step
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    assert resumed.model.val_sharpe_history == straight.model.val_sharpe_history


def test_a2c_and_target_kl_early_stop():
    a2c = main(
        ["fit", "--config", SYNTHETIC, "--trainer.max_epochs", "2", "--model.init_args.loss", "a2c"]
    )
    assert float(a2c.trainer.callback_metrics["train/clip_fraction"]) == 0.0
    per_epoch = a2c.datamodule.num_minibatches()
    assert a2c.trainer.global_step == 2 * per_epoch
    kl = main(
        [
            "fit",
            "--config",
            SYNTHETIC,
            "--trainer.max_epochs",
            "2",
            "--model.init_args.target_kl",
            "1e-12",
        ]
    )
    assert (
        kl.trainer.global_step < 2 * per_epoch
    )  # updates stopped early once approx-KL exceeded the target


def test_mixed_precision_trains_with_gradient_clipping():
    # Lightning refuses to clip gradients of a fused optimizer under mixed precision.
    cli = main(
        [
            "fit",
            "--config",
            SYNTHETIC,
            "--trainer.max_epochs",
            "1",
            "--trainer.precision",
            "bf16-mixed",
        ]
    )
    assert cli.trainer.global_step == cli.datamodule.num_minibatches()
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


@pytest.mark.slow
def test_ppo_ddp_on_two_cpu_processes(tmp_path):
    result = run_main("fit", "--config", SYNTHETIC, "--trainer.max_epochs", "2", *DDP_ON_TWO_CPUS)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "runs/ppo/version_0/checkpoints/last.ckpt", weights_only=False)
    assert state["global_step"] == 2 * 16  # each rank served the same number of minibatches
    assert len(list((tmp_path / "runs/ppo/version_0").glob("events.out.tfevents.*"))) == 1


def test_bad_market_data_is_one_line_and_writes_nothing(tmp_path):
    missing = run_main("fit", "--config", SYNTHETIC, "--data.init_args.dataset", "no/such.csv")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "error: no/such.csv: no such file" in missing.stderr
    assert not (tmp_path / "runs").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n2020-01-01,1,2,3,1.5,10\n")
    malformed = run_main("fit", "--config", SYNTHETIC, "--data.init_args.dataset", str(bad))
    assert malformed.returncode == 2 and "Traceback" not in malformed.stderr
    assert f"error: {bad}" in malformed.stderr


def test_rollouts_are_a_function_of_seed_rank_and_epoch():
    """What makes resume exact and DDP ranks distinct without checkpointing env cursors."""
    from types import SimpleNamespace

    from datamodules.market import MarketDataModule

    datamodule = MarketDataModule(
        dataset="synthetic", window=16, episode_length=16, num_envs=4, rollout_steps=16
    )

    def uniform(obs, held):
        return torch.zeros(len(obs), 3), torch.zeros(len(obs))

    def rollout_bars(rank: int, epoch: int) -> torch.Tensor:
        datamodule.trainer = SimpleNamespace(global_rank=rank, current_epoch=epoch)
        return datamodule.collect_rollout(uniform, datamodule.rollout_generator()).bars

    assert torch.equal(rollout_bars(0, 3), rollout_bars(0, 3))
    assert not torch.equal(rollout_bars(0, 3), rollout_bars(1, 3))
    assert not torch.equal(rollout_bars(0, 3), rollout_bars(0, 4))


def test_learning_rate_anneals_linearly_per_iteration():
    """CleanRL detail 4: lr_e = lr * (1 - e / max_epochs); the last epoch trains at lr / 3 here."""
    cli = main(
        ["fit", "--config", SYNTHETIC, "--trainer.max_epochs", "3", "--model.init_args.lr", "0.003"]
    )
    assert float(cli.trainer.callback_metrics["train/lr"]) == pytest.approx(0.001)
