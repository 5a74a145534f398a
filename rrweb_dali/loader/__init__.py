"""The training-side loader: token shards -> NVIDIA DALI -> ``dict[str, torch.Tensor]`` batches.

``make_loader`` is the entry point; see :mod:`rrweb_dali.loader.loader` for the epoch and resume
semantics and :mod:`rrweb_dali.loader.pipeline` for the DALI graph and where padding happens.
"""

from rrweb_dali.loader.loader import Loader, make_loader
from rrweb_dali.loader.pipeline import IGNORE_INDEX, PAD_ID

__all__ = ["IGNORE_INDEX", "PAD_ID", "Loader", "make_loader"]
