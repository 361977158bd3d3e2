from datamodules.example.blobs import BlobsDataModule, BlobsSpec

__all__ = ["BlobsDataModule", "BlobsSpec"]
