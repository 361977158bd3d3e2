from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test writes under its own tmp_path and starts without inherited run versions."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIVESHI_RUN_VERSION", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


# Two CPU processes over gloo: the DDP path every test of it uses.
DDP_ON_TWO_CPUS = (
    "--trainer.strategy",
    "ddp",
    "--trainer.accelerator",
    "cpu",
    "--trainer.devices",
    "2",
)


def conf(name: str) -> str:
    return str(ROOT / "tests" / "conf" / name)


def run_main(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python main.py ...` in a fresh process (needed for DDP and for exit codes)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
