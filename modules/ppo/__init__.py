from modules.ppo.lightning import PPOTrader

__all__ = ["PPOTrader"]
