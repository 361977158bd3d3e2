"""The CLI: every subcommand, saved configs, run directories, and one-line user errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from main import main
from tests.conftest import ROOT, conf, run_main


def test_fit_then_every_subcommand_with_best_and_last(tmp_path):
    main(["fit", "--config", conf("example.yaml")])
    run = tmp_path / "runs" / "example" / "version_0"
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    for subcommand in ("validate", "test", "predict"):
        cli = main([subcommand, "--config", conf("example.yaml"), "--ckpt_path", "best"])
        assert cli.trainer.state.finished
    # test/validate/predict reuse the newest run instead of opening a new one
    assert sorted(p.name for p in (tmp_path / "runs" / "example").iterdir()) == ["version_0"]
    test_cli = main(["test", "--config", conf("example.yaml"), "--ckpt_path", "last"])
    assert 0.0 <= float(test_cli.trainer.callback_metrics["test/acc"]) <= 1.0


def test_saved_config_pins_its_run_and_reproduces_it(tmp_path):
    runs = tmp_path / "runs" / "example"
    main(["fit", "--config", conf("example.yaml")])
    saved = runs / "version_0" / "config.yaml"
    assert yaml.safe_load(saved.read_text())["trainer"]["logger"]["init_args"]["version"] == 0
    main(["fit", "--config", conf("example.yaml")])  # an unpinned config opens the next version
    assert (runs / "version_1" / "config.yaml").is_file()
    # the saved config alone (into another directory) reproduces the first run's weights
    main(["fit", "--config", str(saved), "--trainer.logger.init_args.version", "7"])
    first = torch.load(runs / "version_0/checkpoints/last.ckpt", weights_only=True)
    again = torch.load(runs / "version_7/checkpoints/last.ckpt", weights_only=True)
    for name, value in first["state_dict"].items():
        assert torch.equal(value, again["state_dict"][name]), name


def test_print_config_is_complete(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", conf("example.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["hidden"] == 16
    assert printed["data"]["init_args"]["samples"] == 240
    assert "max_epochs" in printed["trainer"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.init_args.bogus", "1"], "bogus"),
        (["--data.init_args.samples", "5"], "data.samples=5 is too small"),
        (["--config", "/nonexistent/x.yaml"], "does not exist"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(args, expected, tmp_path):
    result = run_main("fit", "--config", conf("example.yaml"), *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and expected in error_lines[0], result.stderr
    assert not (Path(tmp_path) / "runs").exists()  # nothing written, earlier runs untouched


def test_missing_checkpoint_alias_is_a_user_error(tmp_path):
    result = run_main("test", "--config", conf("example.yaml"), "--ckpt_path", "best")
    assert result.returncode == 2
    assert "no best.ckpt" in result.stderr and "Traceback" not in result.stderr


def test_every_config_in_configs_parses(capsys):
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert configs, "configs/ is empty"
    for path in configs:
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--config", str(path), "--print_config"])
        assert exit_info.value.code == 0, path
    capsys.readouterr()


def _one_line_error(result, expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]


def test_test_and_predict_keep_the_config_that_trained_the_run(tmp_path):
    main(["fit", "--config", conf("example.yaml")])
    saved = tmp_path / "runs/example/version_0/config.yaml"
    trained = saved.read_text()
    for subcommand in ("test", "predict", "validate"):
        main([subcommand, "--config", conf("example.yaml"), "--ckpt_path", "best"])
    assert saved.read_text() == trained


def test_fit_will_not_restart_a_run_that_has_checkpoints(tmp_path):
    main(["fit", "--config", conf("example.yaml")])
    saved = tmp_path / "runs/example/version_0/config.yaml"
    last = tmp_path / "runs/example/version_0/checkpoints/last.ckpt"
    before = last.read_bytes()
    _one_line_error(run_main("fit", "--config", str(saved)), "--ckpt_path last to resume")
    assert last.read_bytes() == before


def test_bad_checkpoint_paths_are_one_line_errors(tmp_path):
    main(["fit", "--config", conf("example.yaml")])
    best = str(tmp_path / "runs/example/version_0/checkpoints/best.ckpt")
    not_a_checkpoint = tmp_path / "notes.ckpt"
    not_a_checkpoint.write_text("hello")
    cases = [
        (["--ckpt_path", "missing.ckpt"], "no such file"),
        (["--ckpt_path", str(not_a_checkpoint)], "not a readable checkpoint"),
        (["--ckpt_path", best, "--model.init_args.hidden", "8"], "use the model arguments"),
    ]
    for args, expected in cases:
        _one_line_error(run_main("test", "--config", conf("example.yaml"), *args), expected)


def test_a_fit_that_fails_on_bad_data_leaves_no_run_behind(tmp_path):
    synthetic = conf("ppo_synthetic.yaml")
    main(["fit", "--config", synthetic, "--trainer.max_epochs", "1"])
    bad = tmp_path / "bad.csv"
    rows = ["Date,Open,High,Low,Close,Volume"]
    rows += [f"2001-01-{d:02d},10,9,11,10,100" for d in range(1, 29)]  # High < Low
    bad.write_text("\n".join(rows) + "\n")
    result = run_main("fit", "--config", synthetic, "--data.init_args.dataset", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "runs/ppo").iterdir()) == ["version_0"]
    # and `best` still means the run that trained
    assert main(["test", "--config", synthetic, "--ckpt_path", "best"]).trainer.state.finished
