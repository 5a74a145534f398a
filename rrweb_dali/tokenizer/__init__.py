"""Structural tokenizer for rrweb events: see :class:`Tokenizer` and :mod:`.vocab` for the layout."""

from rrweb_dali.tokenizer.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer
from rrweb_dali.tokenizer.vocab import VERSION, VOCAB_SIZE

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "VERSION", "VOCAB_SIZE", "Tokenizer"]
