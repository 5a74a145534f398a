"""The Hugging Face layout (``make_loader(..., layout="hf")``): model inputs only, the rest apart.

A batch is an :class:`HFBatch`, a ``dict`` of exactly the keyword arguments a Hugging Face causal
LM takes, so ``model(**batch)`` works and returns the loss; ``batch.meta`` holds the bookkeeping
(``index``, ``lengths``, a mixture's ``dataset`` and, when packing, ``document_ids``) that a
model must not be given.

Padded mode: ``input_ids``, ``attention_mask``, ``labels`` (and ``position_ids`` on request), as
in the plain layout. Packing mode, rows ``[B, L]`` as in the plain layout:

* ``input_ids``, ``position_ids`` restarting at 0 at every segment, ``labels`` with -100 at each
  segment's first token and on padding (Hugging Face shifts labels inside the model, so the -100
  keeps a segment's last token from learning to predict the next segment's first one; the same
  labels as ``DataCollatorWithFlattening``'s);
* ``cu_seq_lens_q`` / ``cu_seq_lens_k`` (one ``int32`` tensor under both names): the segment
  boundaries in the flattened batch, what flash-attention's varlen kernels take;
  ``max_length_q`` / ``max_length_k``: the longest segment, a Python int read from the host copy
  of the plan (no device sync);
* ``seq_idx`` (``int32``, ``[B, L]``): each token's segment number in the batch, which Mamba-style
  kernels use to reset their state;
* ``use_cache=False``.

A segment is a run of one session inside one row (a session continued from the previous row is a
new segment: its positions restart and it attends only to itself), or the padding at the end of
the epoch's last row (a segment of its own, all labels -100). No ``attention_mask``: transformers
(5.x, ``masking_utils``) detects packed rows from ``position_ids`` only when the mask is ``None``
and no cache is passed, and then keeps every segment to itself with eager and sdpa attention.
A causal LM whose config has ``use_cache=True`` (the default) builds an empty cache in
``forward`` unless told otherwise, which switches that detection off and lets documents attend to
each other silently: hence ``use_cache=False`` in the batch (Hugging Face's ``Trainer`` sets the
same through ``TrainingArguments.use_cache``).

Why rows ``[B, L]`` and not ``DataCollatorWithFlattening``'s one ``[1, B * L]`` row: eager and
sdpa attention build a ``q x k`` mask per row, so one flattened row costs ``B`` times the mask
memory and attention work of ``B`` rows, for the same result; flash-attention with the
``cu_seq_lens_*`` kwargs flattens the batch itself (its varlen path reshapes ``[B, L]`` to
``B * L`` tokens), so both ways give it the same call. Only flash-attention *without* those kwargs
(inferring them from ``position_ids``) requires batch size 1, and this layout always gives them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

# Keys of a finished batch that stay out of the model's keyword arguments.
META_KEYS = ("document_ids", "lengths", "index", "dataset")


class HFBatch(dict):
    """``model(**batch)``-ready inputs; ``batch.meta`` is the bookkeeping (``index``,
    ``lengths``, ``document_ids``).

    A copy made as ``type(batch)(mapping)`` (as ``Trainer._prepare_inputs`` and accelerate's
    device transfer do) keeps the inputs and starts with an empty ``meta``: read ``meta`` from the
    batch the loader handed out.
    """

    __slots__ = ("meta",)

    def __init__(self, inputs: Mapping | None = None, meta: dict | None = None):
        super().__init__(() if inputs is None else inputs)
        self.meta: dict[str, torch.Tensor] = {} if meta is None else meta

    def __reduce__(self):
        return (type(self), (dict(self), self.meta))


def hf_batch(batch: dict, seg_lengths: np.ndarray, packing: bool) -> HFBatch:
    """The Hugging Face layout of a finished batch; ``seg_lengths`` is the host copy of the
    wire's lengths (the segments', when packing), so the Python ints need no device sync."""
    meta = {k: batch[k] for k in META_KEYS if k in batch}
    inputs = {k: v for k, v in batch.items() if k not in META_KEYS and k != "cu_seqlens"}
    if packing:
        cu = batch["cu_seqlens"]
        longest = int(seg_lengths.max()) if seg_lengths.size else 0
        inputs.update(
            cu_seq_lens_q=cu,
            cu_seq_lens_k=cu,
            max_length_q=longest,
            max_length_k=longest,
            use_cache=False,
        )
    return HFBatch(inputs, meta)
