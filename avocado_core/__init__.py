"""avocado_core: Avocado, multi-scale deep tensor factorization of epigenomic data, in PyTorch."""

__version__ = "0.1.0"
