"""The training-side loader: token shards -> NVIDIA DALI -> ``dict[str, torch.Tensor]`` batches.

Data flow, one module each: :mod:`.make` (keywords -> options) -> :mod:`.loader` (position,
epochs, state) -> :mod:`.passes` (one pass over an epoch) -> :mod:`.runner` (a DALI pipeline's
life and the thread running it ahead) -> :mod:`.graph` (the DALI graph) -> :mod:`.assemble`
(outputs -> batches) -> :mod:`.finish_host` / :mod:`.finish_torch` (the tensors, keyed by
:mod:`.fields`) -> :mod:`.layout` (the Hugging Face layout, on request).

Importing it needs torch and DALI; without them it raises
:class:`~rrweb_dali.extras.MissingDependency` naming the extra to install.
"""

from rrweb_dali.extras import require

require("torch", "the loader")
require("nvidia.dali", "the loader")

from rrweb_dali.external_source.state import LoaderStateError  # noqa: E402
from rrweb_dali.loader.distributed import RankError  # noqa: E402
from rrweb_dali.loader.fields import IGNORE_INDEX, PAD_ID  # noqa: E402
from rrweb_dali.loader.layout import HFBatch  # noqa: E402
from rrweb_dali.loader.loader import Loader  # noqa: E402
from rrweb_dali.loader.make import make_loader  # noqa: E402

__all__ = [
    "IGNORE_INDEX",
    "PAD_ID",
    "HFBatch",
    "Loader",
    "LoaderStateError",
    "RankError",
    "make_loader",
]
