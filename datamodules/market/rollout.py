"""Rollout collection, GAE(lambda), and PPO minibatches: the "replay" half of the trader.

A rollout is T steps x N envs collected with the current policy and no gradients. Truncated
episodes (every episode here: markets do not terminate) are bootstrapped with the value of
the state they reached, as SB3 does for time limits; CleanRL's ppo.py ignores this.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from datamodules.market.env import MarketEnv

# policy(bars [B], held position [B]) -> (logits [B, A], value [B], ...): the policy's view of
# bar t is the window ending at t, which the policy reads from the split it was built on.
Policy = Callable[[torch.Tensor, torch.Tensor], tuple]


@dataclass
class Rollout:
    bars: torch.Tensor  # [T, N] decision bar of each step
    held: torch.Tensor  # [T, N] position held before the decision (observation)
    actions: torch.Tensor  # [T, N] action index
    logprobs: torch.Tensor  # [T, N]
    values: torch.Tensor  # [T, N]
    rewards: torch.Tensor  # [T, N] scaled, with truncation bootstrap added
    dones: torch.Tensor  # [T, N] episode ended after this step
    net_returns: torch.Tensor  # [T, N] unscaled fee-inclusive log return (for metrics)
    positions: torch.Tensor  # [T, N] position taken
    episode_returns: torch.Tensor  # [E] sums of net_returns of episodes that ended
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    steps_per_s: float = 0.0

    @property
    def num_steps(self) -> int:
        return self.bars.numel()


@torch.no_grad()
def collect(
    env: MarketEnv,
    policy: Policy,
    steps: int,
    generator: torch.Generator,
    reward_scale: float = 1.0,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
) -> Rollout:
    """Run `steps` env steps with actions sampled from the policy, then compute GAE.

    Sampling uses `generator` only, so a rollout is a pure function of (weights, env state,
    generator state). Rewards are multiplied by `reward_scale` for learning; `net_returns`
    keep the unscaled log returns for metrics.
    """
    start = time.perf_counter()
    n = env.num_envs
    steps_taken: list[dict[str, torch.Tensor]] = []
    running = torch.zeros(n, dtype=torch.float64)
    finished: list[torch.Tensor] = []
    for _ in range(steps):
        bars, held = env.t.clone(), env.position.float()
        logits, value = policy(bars, held)[:2]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        actions = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(1)
        reward, done, final_t, final_position = env.step(actions)
        scaled = reward.float() * reward_scale
        running += reward
        if done.any():  # bootstrap truncated episodes with V(state reached)
            final_value = policy(final_t[done], final_position[done].float())[1]
            scaled[done] += gamma * final_value.float()
            finished.append(running[done].clone())
            running[done] = 0.0
        steps_taken.append(
            {
                "bars": bars,
                "held": held,
                "actions": actions,
                "logprobs": log_probs.gather(1, actions[:, None]).squeeze(1),
                "values": value.float(),
                "rewards": scaled,
                "dones": done,
                "net_returns": reward,
                "positions": env.positions[actions],
            }
        )
    rollout = Rollout(
        **{k: torch.stack([step[k] for step in steps_taken]) for k in steps_taken[0]},
        episode_returns=torch.cat(finished) if finished else torch.zeros(0),
    )
    next_value = policy(env.t, env.position.float())[1].float()
    rollout.advantages, rollout.returns = gae(
        rollout.rewards, rollout.values, rollout.dones, next_value, gamma, gae_lambda
    )
    rollout.steps_per_s = steps * n / (time.perf_counter() - start)
    return rollout


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16), as in CleanRL.

    delta_k = r_k + gamma * V(s_{k+1}) * (1 - done_k) - V(s_k)
    A_k = delta_k + gamma * lam * (1 - done_k) * A_{k+1};   returns = A + V.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for k in reversed(range(steps)):
        not_done = 1.0 - dones[k].float()
        following = next_value if k == steps - 1 else values[k + 1]
        delta = rewards[k] + gamma * following * not_done - values[k]
        last = delta + gamma * lam * not_done * last
        advantages[k] = last
    return advantages, advantages + values


def minibatches(
    rollout: Rollout,
    extras: Callable[[torch.Tensor], dict],
    epochs: int,
    minibatch_size: int,
    generator: torch.Generator,
) -> Iterator[dict[str, torch.Tensor]]:
    """`epochs` passes over the flattened rollout in shuffled minibatches (last one may be short).

    `extras(bars)` adds what the learner needs beside the rollout's fields (the series the
    bars index, auxiliary targets); observations are not copied into batches.
    """
    flat = {
        "bars": rollout.bars.reshape(-1),
        "held": rollout.held.reshape(-1).float(),
        "actions": rollout.actions.reshape(-1),
        "logprobs": rollout.logprobs.reshape(-1),
        "values": rollout.values.reshape(-1),
        "advantages": rollout.advantages.reshape(-1),
        "returns": rollout.returns.reshape(-1),
    }
    total = rollout.num_steps
    for _ in range(epochs):
        order = torch.randperm(total, generator=generator)
        for start in range(0, total, minibatch_size):
            index = order[start : start + minibatch_size]
            batch = {key: value[index] for key, value in flat.items()}
            batch.update(extras(batch["bars"]))
            yield batch
