"""The trader's policy/value network: small, deep, residual, depthwise-separable 1-D convs.

Choices from the research note:
- no BatchNorm: batch statistics are noisy in RL (on-policy batches are correlated and shift
  as the policy changes); GroupNorm(1, C) normalizes each sample on its own;
- depth through residual blocks, size through depthwise-separable convs (k*C + C*C weights
  per conv instead of k*C*C);
- location across the window: convolutions and pooling are shift-invariant, so a coordinate
  channel (linear ramp from -1, oldest bar, to +1, newest) is appended to the input, and the
  head sees the newest bar's features beside the window average.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SeparableResBlock(nn.Module):
    """x + [norm, GELU, depthwise conv, pointwise conv] x 2, pre-activation style."""

    def __init__(
        self, channels: int, kernel_size: int = 5, dilation: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                nn.GroupNorm(1, channels),
                nn.GELU(),
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    padding=padding,
                    dilation=dilation,
                    groups=channels,
                ),
                nn.Conv1d(channels, channels, 1),
            ]
        layers.insert(4, nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvTrunk(nn.Module):
    """[B, F, W] window -> [B, 2 * width]: window average and newest bar of the last block."""

    def __init__(
        self,
        in_features: int,
        window: int,
        width: int,
        depth: int,
        kernel_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "coordinate", torch.linspace(-1.0, 1.0, window).view(1, 1, window), persistent=False
        )
        self.stem = nn.Conv1d(in_features + 1, width, 1)
        # No dilation: dilated depthwise convs are 3x slower on CPU, and `depth` blocks of two
        # k-wide convs already see 1 + 2 * depth * (k - 1) bars (33 for the defaults).
        self.blocks = nn.Sequential(
            *[SeparableResBlock(width, kernel_size, dropout=dropout) for _ in range(depth)]
        )
        self.norm = nn.GroupNorm(1, width)
        self.out_features = 2 * width

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        coordinate = self.coordinate.expand(obs.shape[0], 1, -1)
        h = self.blocks(self.stem(torch.cat([obs, coordinate], dim=1)))
        h = torch.nn.functional.gelu(self.norm(h))
        return torch.cat([h.mean(dim=-1), h[..., -1]], dim=-1)


def _head(in_features: int, hidden: int, out: int, gain: float) -> nn.Sequential:
    head = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, out))
    for layer, layer_gain in ((head[0], math.sqrt(2)), (head[2], gain)):
        nn.init.orthogonal_(layer.weight, layer_gain)  # CleanRL detail 2: orthogonal init
        nn.init.zeros_(layer.bias)
    return head


class PolicyValueNet(nn.Module):
    """Logits over positions, state value and auxiliary predictions from a window and a position.

    Args:
        shared_trunk: one trunk for policy and value (cheaper) or one each (no interference).
        aux_outputs: auxiliary heads on the policy trunk (here: next-k return sign logit and
            realized volatility); 0 disables them.
    """

    def __init__(
        self,
        in_features: int,
        window: int,
        positions: tuple[float, ...],
        width: int = 32,
        depth: int = 4,
        kernel_size: int = 5,
        dropout: float = 0.0,
        hidden: int = 64,
        shared_trunk: bool = True,
        aux_outputs: int = 2,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "positions", torch.tensor(positions, dtype=torch.float32), persistent=False
        )
        make_trunk = lambda: ConvTrunk(in_features, window, width, depth, kernel_size, dropout)  # noqa: E731
        self.policy_trunk = make_trunk()
        self.value_trunk = None if shared_trunk else make_trunk()
        features = self.policy_trunk.out_features + len(positions)
        self.policy_head = _head(features, hidden, len(positions), gain=0.01)  # near-uniform start
        self.value_head = _head(features, hidden, 1, gain=1.0)
        self.aux_head = (
            nn.Linear(self.policy_trunk.out_features, aux_outputs) if aux_outputs else None
        )

    def forward(self, obs: torch.Tensor, held: torch.Tensor):
        """obs [B, F, W], held position [B] -> logits [B, A], value [B], aux [B, K] or None."""
        held_one_hot = (held[:, None] == self.positions[None, :]).to(obs.dtype)
        policy_features = self.policy_trunk(obs)
        value_features = policy_features if self.value_trunk is None else self.value_trunk(obs)
        logits = self.policy_head(torch.cat([policy_features, held_one_hot], dim=-1))
        value = self.value_head(torch.cat([value_features, held_one_hot], dim=-1)).squeeze(-1)
        aux = self.aux_head(policy_features) if self.aux_head is not None else None
        return logits, value, aux
