"""rrweb-dali: rrweb session recordings to GPU training batches."""

__version__ = "0.1.0"
