"""The trader's policy/value network: small, deep, residual, depthwise-separable 1-D convs.

Choices from the research note:
- no BatchNorm: batch statistics are noisy in RL (on-policy batches are correlated and shift
  as the policy changes); LayerNorm normalizes each bar of each sample on its own;
- depth through residual blocks, size through depthwise-separable convs (k*C + C*C weights
  per conv instead of k*C*C);
- location across the window: every conv is "valid" (no padding), so each output sees a fixed
  range of lags and nothing else, and the last layer pools the remaining positions with a
  learned weight per lag and channel. Where a bar sits in the window is part of the wiring,
  not something the network has to infer from a coordinate channel.

Why valid convs and bar-local norms: the output for the window ending at bar t then depends on
bars t-W+1..t only, and is the same number whether computed from that window alone or as
position t of one convolution over the whole series. `encode` uses whichever is cheaper: a
series pass costs about one window per *bar* of the span, a window batch one window per
*sample*, so a minibatch of 1,024 bars of a 1,600-bar split is ~20x cheaper as a series pass.
Rollouts and evaluation encode each split once per policy, then only run the small heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from modules.errors import ConfigError

# policy(bars [B], held [B]) -> (logits [B, A], value [B], aux [B, K] or None)
BarPolicy = Callable[[torch.Tensor, torch.Tensor], tuple]


class DepthwiseConv(nn.Module):
    """nn.Conv1d(C, C, k, groups=C) without padding, on channel-last [B, L, C] (-> [B, L-k+1, C]).

    Written as k shifted multiply-adds: on CPU, for these widths, that and channel-last
    LayerNorm/Linear run a block about 2x faster than mkldnn's grouped conv in [B, C, L].
    """

    def __init__(self, channels: int, kernel_size: int, bias: bool = True) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        bound = 1.0 / math.sqrt(kernel_size)  # nn.Conv1d's default init for groups=C
        self.weight = nn.Parameter(torch.empty(kernel_size, channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-2] - self.kernel_size + 1
        out = x[..., :length, :] * self.weight[0]
        for k in range(1, self.kernel_size):
            out = torch.addcmul(out, x[..., k : k + length, :], self.weight[k])
        return out if self.bias is None else out + self.bias


class SeparableResBlock(nn.Module):
    """x + [LayerNorm, GELU, depthwise conv, pointwise] x 2, pre-activation, on [B, L, C].

    LayerNorm is over each bar's channels: no statistics across bars or samples. The output
    is 2 * (kernel_size - 1) bars shorter than the input; the skip path keeps the newest bars,
    so every output stays aligned with the last bar it sees.
    """

    def __init__(self, channels: int, kernel_size: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                nn.LayerNorm(channels),
                nn.GELU(),
                DepthwiseConv(channels, kernel_size),
                nn.Linear(channels, channels),  # pointwise
            ]
        layers.insert(4, nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.shrink = 2 * (kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.shrink :, :] + self.body(x)


class ConvTrunk(nn.Module):
    """[B, L, F] bars -> [B, L - window + 1, 2 * width]: one output per complete window.

    Per window: a learned per-lag pooling of the last block's positions (it starts as a plain
    average), beside the newest bar's features.
    """

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
        seen = 1 + 2 * depth * (kernel_size - 1)
        if seen > window:
            raise ConfigError(
                f"model.depth={depth} blocks of kernel_size={kernel_size} see {seen} bars, "
                f"more than data.window={window}; lower them or raise the window"
            )
        self.lags = window - seen + 1
        self.stem = nn.Linear(in_features, width)
        self.blocks = nn.Sequential(
            *[SeparableResBlock(width, kernel_size, dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(width)
        self.pool = DepthwiseConv(width, self.lags, bias=False)
        nn.init.constant_(self.pool.weight, 1.0 / self.lags)
        self.out_features = 2 * width

    def forward(self, bars: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.gelu(self.norm(self.blocks(self.stem(bars))))
        return torch.cat([self.pool(h), h[..., self.lags - 1 :, :]], dim=-1)


def _head(in_features: int, hidden: int, out: int, gain: float) -> nn.Sequential:
    head = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, out))
    for layer, layer_gain in ((head[0], math.sqrt(2)), (head[2], gain)):
        nn.init.orthogonal_(layer.weight, layer_gain)  # CleanRL detail 2: orthogonal init
        nn.init.zeros_(layer.bias)
    return head


class PolicyValueNet(nn.Module):
    """Logits over positions, state value and auxiliary predictions from a window and a position.

    Two exact ways in: `forward(obs [B, F, W], held)` for explicit windows (the gymnasium
    view), and `encode(features [T, F], bars)` + `heads` for bars of a known series.

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
        kernel_size: int = 4,
        dropout: float = 0.0,
        hidden: int = 64,
        shared_trunk: bool = True,
        aux_outputs: int = 2,
    ) -> None:
        super().__init__()
        self.window = window
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

    # ---- trunk: windows or a series, same numbers ---------------------------------------
    def _trunks(self, bars: torch.Tensor) -> torch.Tensor:
        """[B, L, F] -> [B, L - W + 1, E], E = policy features (+ value features if separate)."""
        encoded = self.policy_trunk(bars)
        if self.value_trunk is not None:
            encoded = torch.cat([encoded, self.value_trunk(bars)], dim=-1)
        return encoded

    def encode_windows(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, F, W] (the observation's layout) -> [B, E]."""
        return self._trunks(obs.transpose(1, 2)).squeeze(1)

    def encode_series(self, features: torch.Tensor) -> torch.Tensor:
        """features [T, F] -> [T - W + 1, E]; row j is the window ending at bar j + W - 1."""
        return self._trunks(features.unsqueeze(0))[0]

    def encode(self, features: torch.Tensor, bars: torch.Tensor) -> torch.Tensor:
        """[B, E] for the windows ending at `bars` of `features` [T, F], by the cheaper route."""
        w = self.window
        first, last = int(bars.min()) - w + 1, int(bars.max())
        if first < 0:
            raise ValueError(f"bar {first + w - 1} has fewer than window={w} bars behind it")
        if last - first + 1 <= len(bars) * w:  # span pass: ~one window of work per bar
            encoded = self.encode_series(features[first : last + 1])
            # index_select, not encoded[rows]: the latter's backward accumulates repeated rows
            # in a thread-dependent order on CPU, so runs would not repeat bit for bit
            return torch.index_select(encoded, 0, bars - (first + w - 1))
        return self.encode_windows(features.unfold(0, w, 1)[bars - w + 1])

    # ---- heads --------------------------------------------------------------------------
    def heads(self, encoded: torch.Tensor, held: torch.Tensor):
        """encoded [B, E], held position [B] -> logits [B, A], value [B], aux [B, K] or None."""
        held_one_hot = (held[:, None] == self.positions[None, :]).to(encoded.dtype)
        policy_features = encoded[:, : self.policy_trunk.out_features]
        value_features = (
            policy_features
            if self.value_trunk is None
            else encoded[:, self.policy_trunk.out_features :]
        )
        logits = self.policy_head(torch.cat([policy_features, held_one_hot], dim=-1))
        value = self.value_head(torch.cat([value_features, held_one_hot], dim=-1)).squeeze(-1)
        aux = self.aux_head(policy_features) if self.aux_head is not None else None
        return logits, value, aux

    def forward(self, obs: torch.Tensor, held: torch.Tensor):
        """obs [B, F, W], held position [B] -> logits [B, A], value [B], aux [B, K] or None."""
        return self.heads(self.encode_windows(obs), held)

    @torch.no_grad()
    def bar_policy(self, features: torch.Tensor) -> BarPolicy:
        """A policy over bars of one series: the trunk runs once here, each call only the heads.

        Bars without a full window behind them encode as NaN, so misuse cannot pass unseen.
        """
        features = features.to(self.positions.device)
        encoded = self.encode_series(features)
        missing = encoded.new_full((self.window - 1, encoded.shape[1]), float("nan"))
        encoded = torch.cat([missing, encoded])  # row t: the window ending at bar t

        def policy(bars: torch.Tensor, held: torch.Tensor):
            if len(bars) and int(bars.min()) < 0:
                raise ValueError(f"negative bar index {int(bars.min())}")
            with torch.no_grad():
                return self.heads(encoded[bars.to(encoded.device)], held.to(encoded.device))

        return policy
