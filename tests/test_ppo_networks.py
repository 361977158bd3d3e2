"""The policy network's structural promises: no BatchNorm, separable convs, trunk sharing."""

from __future__ import annotations

import torch
from torch import nn

from modules.ppo.networks import PolicyValueNet


def _net(**kwargs) -> PolicyValueNet:
    torch.manual_seed(0)
    return PolicyValueNet(6, 16, (-1.0, 0.0, 1.0), width=8, depth=3, **kwargs)


def test_no_batchnorm_and_every_wide_conv_is_depthwise():
    net = _net()
    modules = list(net.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules)
    assert any(isinstance(m, nn.GroupNorm) for m in modules)
    convs = [m for m in modules if isinstance(m, nn.Conv1d)]
    assert all(m.groups == m.in_channels == m.out_channels for m in convs if m.kernel_size[0] > 1)
    assert all(m.kernel_size[0] == 1 for m in convs if m.groups == 1)  # the rest are pointwise


def test_outputs_have_the_documented_shapes_and_the_head_sees_the_position():
    net = _net()
    obs = torch.randn(5, 6, 16)
    logits, value, aux = net(obs, torch.zeros(5))
    assert logits.shape == (5, 3) and value.shape == (5,) and aux.shape == (5, 2)
    long_logits = net(obs, torch.ones(5))[0]
    assert not torch.allclose(logits, long_logits)


def test_separate_trunks_keep_value_gradients_out_of_the_policy_trunk():
    separate = _net(shared_trunk=False)
    separate(torch.randn(4, 6, 16), torch.zeros(4))[1].sum().backward()
    assert all(p.grad is None for p in separate.policy_trunk.parameters())
    assert any(p.grad is not None for p in separate.value_trunk.parameters())
    shared = _net(shared_trunk=True)
    shared(torch.randn(4, 6, 16), torch.zeros(4))[1].sum().backward()
    assert shared.value_trunk is None
    assert any(p.grad is not None for p in shared.policy_trunk.parameters())
