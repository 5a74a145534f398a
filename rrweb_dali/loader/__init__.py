"""The training-side loader: token shards -> NVIDIA DALI -> ``dict[str, torch.Tensor]`` batches.

Data flow, one module each: :mod:`.make` (keywords -> options) -> :mod:`.loader` (position,
epochs, state) -> :mod:`.passes` (one pass over an epoch) -> :mod:`.runner` (a DALI pipeline's
life and the thread running it ahead) -> :mod:`.graph` (the DALI graph) -> :mod:`.assemble`
(outputs -> batches) -> :mod:`.finish_host` / :mod:`.finish_torch` (the tensors, keyed by
:mod:`.fields`).
"""

from external_source.state import LoaderStateError
from rrweb_dali.loader.distributed import RankError
from rrweb_dali.loader.fields import IGNORE_INDEX, PAD_ID
from rrweb_dali.loader.loader import Loader
from rrweb_dali.loader.make import make_loader

__all__ = ["IGNORE_INDEX", "PAD_ID", "Loader", "LoaderStateError", "RankError", "make_loader"]
