"""Synthetic rrweb corpus: realistic sessions at scale for benchmarks and tests.

The real development corpus holds 120 recordings; benchmarks need ~32k. These sessions follow the
distributions measured from the real ones (see :mod:`rrweb_dali.synth.profile`) and are
byte-for-byte reproducible from (seed, index).
"""

from rrweb_dali.synth.session import generate_session
from rrweb_dali.synth.write import SynthSummary, write_synth_corpus

__all__ = ["SynthSummary", "generate_session", "write_synth_corpus"]
