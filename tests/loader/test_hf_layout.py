"""``layout="hf"``: Hugging Face model inputs only, bookkeeping in ``batch.meta``.

The central check is isolation: with the packed HF layout, ``model(**batch)`` on tiny GPT-2 and
Llama models (built from configs, default ``use_cache=True``) gives every document of a row the
logits it gets alone, with eager and sdpa attention; the plain layout's mask does not.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from rrweb_dali.external_source import wire
from rrweb_dali.external_source.options import PlanOptions, Transport
from rrweb_dali.external_source.source import BatchSource

from rrweb_dali.loader import IGNORE_INDEX, HFBatch, make_loader
from rrweb_dali.loader.finish_host import finish_host
from rrweb_dali.loader.finish_torch import finish_torch
from rrweb_dali.loader.layout import hf_batch
from rrweb_dali.loader.options import OutputOptions

transformers = pytest.importorskip("transformers", reason="the dev extra installs transformers")

VOCAB = 97  # token ids are taken modulo this for the tiny models
PACKED_INPUTS = {
    "input_ids",
    "labels",
    "position_ids",
    "seq_idx",
    "cu_seq_lens_q",
    "cu_seq_lens_k",
    "max_length_q",
    "max_length_k",
    "use_cache",
}


@pytest.fixture(scope="module")
def short_dataset(tmp_path_factory, write_dataset):
    """Sessions of 1-60 tokens: a 128-token row holds several documents."""
    root = tmp_path_factory.mktemp("short")
    return root, write_dataset(root, n=60, shards=2, seed=5, max_len=60)


@pytest.fixture(scope="module")
def hand_dataset(tmp_path_factory):
    """Three sessions of 3, 7 and 4 tokens (1..n each), for a batch checked by hand."""
    from rrweb_dali.shards.format import ShardWriter
    from rrweb_dali.shards.manifest import Manifest, write_manifest

    root = tmp_path_factory.mktemp("hand")
    w = ShardWriter(root / "shards", "shard-000000")
    fid = w.add_file("f.json")
    for n in (3, 7, 4):
        w.add(np.arange(1, n + 1, dtype=np.uint16), fid)
    write_manifest(root, Manifest(tokenizer={"name": "test"}, shards=[w.close()]))
    return root


def _segments(batch) -> list[tuple[int, int, int]]:
    """``(start, end, session)`` of every segment, in the flattened batch."""
    cu = batch["cu_seq_lens_q"].tolist()
    index = batch.meta["index"].tolist()
    return [(cu[s], cu[s + 1], i) for s, i in enumerate(index)]


def test_hand_checked_packed_batch(hand_dataset):
    """Stream 1-3 | 1-7 | 1-4 in rows of 8: session 1 continues on row 1 (a new segment there),
    and the last row ends with 2 padding tokens (a segment of their own)."""
    loader = make_loader(
        hand_dataset, batch_size=2, device="cpu", shuffle=False, packing=8, layout="hf"
    )
    (batch,) = list(loader)
    assert isinstance(batch, HFBatch) and set(batch) == PACKED_INPUTS
    assert batch["input_ids"].tolist() == [[1, 2, 3, 1, 2, 3, 4, 5], [6, 7, 1, 2, 3, 4, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 0, 1, 2, 3, 0, 1]]
    x = IGNORE_INDEX
    assert batch["labels"].tolist() == [[x, 2, 3, x, 2, 3, 4, 5], [x, 7, x, 2, 3, 4, x, x]]
    assert batch["seq_idx"].tolist() == [[0, 0, 0, 1, 1, 1, 1, 1], [2, 2, 3, 3, 3, 3, 4, 4]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 8, 10, 14, 16]
    assert batch["cu_seq_lens_k"] is batch["cu_seq_lens_q"]
    assert batch["max_length_q"] == batch["max_length_k"] == 5
    assert type(batch["max_length_q"]) is int and batch["use_cache"] is False
    assert batch.meta["index"].tolist() == [0, 1, 1, 2, -1]
    assert batch.meta["lengths"].tolist() == [8, 6]
    assert batch.meta["document_ids"].tolist() == [[0] * 3 + [1] * 5, [1, 1, 2, 2, 2, 2, -1, -1]]
    for key in ("input_ids", "labels", "position_ids"):
        assert batch[key].dtype == torch.int64
    assert batch["seq_idx"].dtype == batch["cu_seq_lens_q"].dtype == torch.int32


def test_packed_fields_agree_with_transformers(short_dataset):
    """Every batch of an epoch: the varlen kwargs equal what transformers derives from
    ``position_ids`` and what ``DataCollatorWithFlattening`` emits for the same segments; no
    label crosses a document boundary; the longest segment is ``max_length_*``."""
    from transformers import DataCollatorWithFlattening
    from transformers.modeling_flash_attention_utils import prepare_fa_kwargs_from_position_ids

    root, sessions = short_dataset
    loader = make_loader(root, batch_size=4, device="cpu", seed=2, packing=128, layout="hf")
    collator = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_seq_idx=True)
    batches, pieces = 0, {}
    for batch in loader:
        batches += 1
        assert set(batch) == PACKED_INPUTS and "attention_mask" not in batch
        ids, labels, pos = batch["input_ids"], batch["labels"], batch["position_ids"]
        rows = ids.shape[0]
        assert ids.shape == labels.shape == pos.shape == batch["seq_idx"].shape == (rows, 128)
        (cu_q, cu_k), (max_q, _) = prepare_fa_kwargs_from_position_ids(pos)
        assert torch.equal(cu_q, batch["cu_seq_lens_q"]) and torch.equal(cu_k, cu_q)
        assert int(max_q) == batch["max_length_q"]
        segments = _segments(batch)
        assert batch["max_length_q"] == max(end - start for start, end, _ in segments)
        flat_ids, flat_doc = ids.reshape(-1), batch.meta["document_ids"].reshape(-1)
        features = [{"input_ids": flat_ids[a:b].tolist()} for a, b, _ in segments]
        expect = collator(features)
        assert torch.equal(expect["position_ids"][0], pos.reshape(-1))
        assert torch.equal(expect["seq_idx"][0], batch["seq_idx"].reshape(-1))
        assert expect["cu_seq_lens_q"].tolist() == batch["cu_seq_lens_q"].tolist()
        assert expect["max_length_q"] == batch["max_length_q"]
        real = flat_doc >= 0
        flat_labels = labels.reshape(-1)
        assert torch.equal(expect["labels"][0][real], flat_labels[real])
        assert (flat_labels[~real] == IGNORE_INDEX).all()
        for start, end, session in segments:
            if session >= 0:
                pieces.setdefault(session, []).append(flat_ids[start:end].numpy())
        # HF shifts inside the model: position t predicts labels[t + 1]; every target it keeps
        # is the next token of the same segment.
        target = labels[:, 1:] != IGNORE_INDEX
        same_doc = batch.meta["document_ids"][:, 1:] == batch.meta["document_ids"][:, :-1]
        next_pos = pos[:, 1:] == pos[:, :-1] + 1
        assert (same_doc & next_pos)[target].all()
        assert torch.equal(target, next_pos & (batch.meta["document_ids"][:, 1:] >= 0))
    assert batches == len(loader) > 2
    for i, tokens in enumerate(sessions):  # the segments hold every session, in order
        got = np.concatenate(pieces.get(i, [np.zeros(0, np.int64)]))
        assert np.array_equal(got, tokens), i


def test_padded_hf_layout_is_the_plain_batch_split(dataset):
    root, _ = dataset
    plain = list(make_loader(root, batch_size=8, device="cpu", seed=4, labels=True))
    hf = list(make_loader(root, batch_size=8, device="cpu", seed=4, layout="hf"))
    assert len(plain) == len(hf) > 1
    for p, h in zip(plain, hf, strict=True):
        assert set(h) == {"input_ids", "attention_mask", "labels"}
        assert set(h.meta) == {"lengths", "index"}
        for k in h:
            assert h[k].dtype == p[k].dtype and torch.equal(h[k], p[k]), k
        for k in h.meta:
            assert torch.equal(h.meta[k], p[k]), k
    no_labels = next(iter(make_loader(root, batch_size=8, device="cpu", layout="hf", labels=False)))
    assert "labels" not in no_labels


def test_every_key_is_a_transformers_model_argument(short_dataset):
    """A causal LM takes each key by name (its ``forward`` or transformers' typed kwargs), so a
    forward that takes only those accepts ``model(**batch)``."""
    import inspect

    from transformers import LlamaForCausalLM
    from transformers.utils.generic import TransformersKwargs

    named = set(inspect.signature(LlamaForCausalLM.forward).parameters)
    accepted = named | set(TransformersKwargs.__annotations__)
    root, _ = short_dataset
    for packing in (None, 64):
        loader = make_loader(root, batch_size=2, device="cpu", packing=packing, layout="hf")
        batch = next(iter(loader))
        assert set(batch) <= accepted, set(batch) - accepted
        assert not set(batch.meta) & accepted


def test_layout_is_checked(short_dataset):
    root, _ = short_dataset
    with pytest.raises(ValueError, match="layout"):
        make_loader(root, batch_size=2, device="cpu", layout="flat")


def test_hf_batch_pickles_with_its_meta(hand_dataset):
    loader = make_loader(hand_dataset, batch_size=2, device="cpu", packing=8, layout="hf")
    batch = next(iter(loader))
    again = pickle.loads(pickle.dumps(batch))
    assert isinstance(again, HFBatch) and again.keys() == batch.keys()
    assert torch.equal(again.meta["index"], batch.meta["index"])
    assert HFBatch({"input_ids": batch["input_ids"]}).meta == {}  # a copy starts without meta


@pytest.mark.parametrize("packing", [None, 256])
def test_torch_path_equals_host_path(dataset, packing):
    """The GPU finishing path (run here on the CPU) builds the same HF batches as the host's."""
    root, _ = dataset
    plan = PlanOptions(batch_size=8, seed=11, packing=packing)
    flat_source = BatchSource(root, plan)
    host_source = BatchSource(root, plan, Transport(pad_on_host=True))
    for dtype in ("int64", "int32"):
        outputs = OutputOptions(dtype, labels=True, packing=packing is not None, layout="hf")
        for it in range(2):
            (flat,), (aux,) = flat_source(it)
            (padded,), _ = host_source(it)
            record = wire.decode(aux)
            width, lengths, index = record.field("width"), record.lengths, record.index
            a = finish_host(padded.astype(dtype), lengths, index, width, outputs)
            b = finish_torch(
                torch.from_numpy(flat.astype(dtype)),
                torch.from_numpy(lengths),
                torch.from_numpy(index),
                width,
                outputs,
            )
            a, b = hf_batch(a, lengths, outputs.packing), hf_batch(b, lengths, outputs.packing)
            assert a.keys() == b.keys() and a.meta.keys() == b.meta.keys()
            for k in a:
                if torch.is_tensor(a[k]):
                    assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), (k, dtype)
                else:
                    assert a[k] == b[k], k
            for k in a.meta:
                assert torch.equal(a.meta[k], b.meta[k]), k
            if packing is not None:
                assert a["seq_idx"].dtype == torch.int32 and a["position_ids"].dtype == getattr(
                    torch, dtype
                )


# ---------------------------------------------------------------- isolation with real models


def _model(kind: str, attn: str):
    """A tiny causal LM from a config (no download), its default ``use_cache=True`` kept."""
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=256
        )
        config.bos_token_id = config.eos_token_id = None
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            hidden_size=32,
            intermediate_size=64,
            vocab_size=VOCAB,
            max_position_embeddings=256,
        )
        model = transformers.LlamaForCausalLM(config)
    assert model.config.use_cache is True
    model.set_attn_implementation(attn)
    return model.eval()


def _worst_difference(model, batches, inputs) -> float:
    """Largest |logits - logits of the document alone| over every real segment."""
    worst = 0.0
    with torch.no_grad():
        for batch in batches:
            logits = model(**inputs(batch)).logits.reshape(-1, VOCAB)
            flat = batch["input_ids"].reshape(-1)
            for start, end, session in batch["segments"]:
                if session < 0:
                    continue
                alone = model(input_ids=flat[None, start:end]).logits[0]
                worst = max(worst, (logits[start:end] - alone).abs().max().item())
    return worst


@pytest.fixture(scope="module")
def packed_batches(short_dataset):
    """Two packed batches in both layouts (ids modulo the tiny vocabulary), with segments."""
    root, _ = short_dataset
    out = {}
    for layout in ("hf", "plain"):
        loader = make_loader(
            root, batch_size=3, device="cpu", seed=1, packing=128, layout=layout, labels=True
        )
        batches = []
        for batch in loader:
            cu = batch["cu_seq_lens_q" if layout == "hf" else "cu_seqlens"].tolist()
            index = (batch.meta if layout == "hf" else batch)["index"].tolist()
            kept = dict(batch)
            kept["input_ids"] = batch["input_ids"] % VOCAB
            labels = batch["labels"]
            kept["labels"] = torch.where(labels == IGNORE_INDEX, IGNORE_INDEX, labels % VOCAB)
            kept["segments"] = [(cu[s], cu[s + 1], i) for s, i in enumerate(index)]
            batches.append(kept)
            if len(batches) == 2:
                break
        out[layout] = batches
    assert sum(len(b["segments"]) for b in out["hf"]) > 6  # rows of several documents
    return out


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_packed_documents_are_isolated(packed_batches, kind, attn):
    model = _model(kind, attn)

    def hf_inputs(batch):
        return {k: v for k, v in batch.items() if k != "segments"}

    assert _worst_difference(model, packed_batches["hf"], hf_inputs) < 1e-5

    # The plain layout's mask (what a user would pass) switches the packed detection off:
    # documents attend to the ones before them in their row.
    def plain_inputs(batch):
        keys = ("input_ids", "attention_mask", "position_ids")
        return {k: batch[k] for k in keys} | {"use_cache": False}

    assert _worst_difference(model, packed_batches["plain"], plain_inputs) > 0.01

    # And without use_cache=False, the default config's empty cache switches it off as well.
    def cached_inputs(batch):
        return {k: v for k, v in hf_inputs(batch).items() if k != "use_cache"}

    assert _worst_difference(model, packed_batches["hf"], cached_inputs) > 0.01


def test_hf_loss_is_the_next_token_loss_within_documents(packed_batches):
    """``model(**batch).loss`` is the mean cross entropy of each position predicting the next
    token of its own document: the label convention matches Hugging Face's shift."""
    model = _model("llama", "sdpa")
    for batch in packed_batches["hf"]:
        inputs = {k: v for k, v in batch.items() if k != "segments"}
        with torch.no_grad():
            out = model(**inputs)
        logits, ids = out.logits, inputs["input_ids"]
        terms = []
        for start, end, session in batch["segments"]:
            if session < 0 or end - start < 2:
                continue
            row, a, b = start // 128, start % 128, start % 128 + (end - start)
            terms.append(
                torch.nn.functional.cross_entropy(
                    logits[row, a : b - 1], ids[row, a + 1 : b], reduction="sum"
                )
            )
        n = int((inputs["labels"] != IGNORE_INDEX).sum())
        assert torch.allclose(out.loss, torch.stack(terms).sum() / n, atol=1e-5)
