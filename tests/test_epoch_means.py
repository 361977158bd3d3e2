"""EpochMeans: batch-size-weighted means of per-step metrics, as Lightning's on_epoch logging."""

from __future__ import annotations

import pytest
import torch

from modules.epoch_means import EpochMeans


def test_weighted_means_and_reset():
    means = EpochMeans()
    means.add({"loss": torch.tensor(1.0), "kl": torch.tensor(0.5)}, weight=3)
    means.add({"loss": torch.tensor(4.0), "kl": torch.tensor(0.0)}, weight=1)
    result = means.means()
    assert result["loss"].item() == pytest.approx((3 * 1.0 + 4.0) / 4)
    assert result["kl"].item() == pytest.approx(1.5 / 4)
    means.reset()
    assert means.means() == {}


def test_values_are_detached():
    weight = torch.tensor(2.0, requires_grad=True)
    means = EpochMeans()
    means.add({"loss": weight * 3})
    assert not means.means()["loss"].requires_grad
