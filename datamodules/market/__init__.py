from datamodules.market.datamodule import MarketDataModule, MarketSpec

__all__ = ["MarketDataModule", "MarketSpec"]
