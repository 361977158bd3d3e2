"""The one place workloads send figures and tables to TensorBoard.

Every workload calls `log_figure` / `log_table`; both are no-ops without a TensorBoard logger
and on ranks other than 0, so callers need no guards.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are rendered to images, never shown

import matplotlib.pyplot as plt  # noqa: E402
from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402


def tensorboard(trainer: Trainer):
    """The SummaryWriter of the trainer's TensorBoard logger on rank 0, else None."""
    if trainer.global_rank != 0:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def log_figure(trainer: Trainer, tag: str, figure: plt.Figure, step: int | None = None) -> None:
    writer = tensorboard(trainer)
    if writer is not None:
        writer.add_figure(tag, figure, global_step=trainer.global_step if step is None else step)
    plt.close(figure)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def log_table(
    trainer: Trainer,
    tag: str,
    header: Sequence[str],
    rows: Sequence[Sequence],
    step: int | None = None,
) -> None:
    writer = tensorboard(trainer)
    if writer is not None:
        text = markdown_table(header, rows)
        writer.add_text(tag, text, global_step=trainer.global_step if step is None else step)


def log_dashboard(trainer: Trainer, layout: dict[str, dict[str, list[str]]]) -> None:
    """A Custom Scalars dashboard: {category: {chart title: [scalar tag regexes]}}.

    Puts related curves on one chart (e.g. strategy vs buy-and-hold Sharpe), which the plain
    Scalars tab cannot do.
    """
    writer = tensorboard(trainer)
    if writer is not None:
        writer.add_custom_scalars(
            {
                category: {title: ["Multiline", tags] for title, tags in charts.items()}
                for category, charts in layout.items()
            }
        )
