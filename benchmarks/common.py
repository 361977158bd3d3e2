"""The benchmark convention: a readable table on stdout and, with --json PATH, a JSON file
{"ratios": {...}, "metrics": {...}, "machine": {...}}. Every ratio compares against a peer
measured in the same run, on the same machine."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table


def parser(description: str) -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--json", type=Path, help="write ratios, metrics and machine facts here")
    return args


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def report(
    title: str, ratios: dict[str, float], metrics: dict[str, float], json_path: Path | None
) -> None:
    console = Console()
    for name, values in (("ratios", ratios), ("metrics", metrics)):
        table = Table(title=f"{title}: {name}")
        table.add_column("key")
        table.add_column("value", justify="right")
        for key, value in values.items():
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
        console.print(table)
    if json_path is not None:
        json_path.write_text(
            json.dumps({"ratios": ratios, "metrics": metrics, "machine": machine()}, indent=2)
        )
        console.print(f"wrote {json_path}")
