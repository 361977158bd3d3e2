"""PPO and A2C losses as pure functions, written to be read beside the papers and CleanRL.

PPO: Schulman et al. 2017, eq. 7 (clipped surrogate) and eq. 9 (value + entropy terms);
value clipping and approx-KL (the k3 estimator) as in CleanRL's ppo.py.
A2C: Mnih et al. 2016 (the synchronous form of A3C): the plain policy gradient on the same
advantages, so PPO and A2C differ only in the policy objective and the number of passes.
"""

from __future__ import annotations

import torch


def normalize(advantages: torch.Tensor) -> torch.Tensor:
    """CleanRL detail 7: per-minibatch advantage normalization."""
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def value_loss(
    new_value: torch.Tensor, old_value: torch.Tensor, returns: torch.Tensor, clip_coef: float | None
) -> torch.Tensor:
    """0.5 * MSE, or CleanRL detail 9's clipped form: max of clipped and unclipped errors."""
    unclipped = (new_value - returns) ** 2
    if clip_coef is None:
        return 0.5 * unclipped.mean()
    clipped_value = old_value + (new_value - old_value).clamp(-clip_coef, clip_coef)
    return 0.5 * torch.max(unclipped, (clipped_value - returns) ** 2).mean()


def ppo_policy_loss(
    new_logprob: torch.Tensor, old_logprob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> dict[str, torch.Tensor]:
    """Clipped surrogate; also approx-KL (k3: (r - 1) - log r) and the clipped fraction."""
    log_ratio = new_logprob - old_logprob
    ratio = log_ratio.exp()
    surrogate = torch.max(
        -advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef)
    )
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clip_fraction = ((ratio - 1).abs() > clip_coef).float().mean()
    return {"policy_loss": surrogate.mean(), "approx_kl": approx_kl, "clip_fraction": clip_fraction}


def a2c_policy_loss(
    new_logprob: torch.Tensor, old_logprob: torch.Tensor, advantages: torch.Tensor
) -> dict[str, torch.Tensor]:
    """-A * log pi(a|s); KL and clip fraction are still reported for comparison with PPO."""
    with torch.no_grad():
        log_ratio = new_logprob - old_logprob
        approx_kl = ((log_ratio.exp() - 1) - log_ratio).mean()
    return {
        "policy_loss": -(advantages * new_logprob).mean(),
        "approx_kl": approx_kl,
        "clip_fraction": torch.zeros((), device=advantages.device),
    }


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var[returns - values] / Var[returns]: 1 is a perfect critic, <= 0 a useless one."""
    variance = returns.var()
    return float("nan") if variance == 0 else float(1 - (returns - values).var() / variance)
