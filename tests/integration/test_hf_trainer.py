"""Hugging Face's ``Trainer`` with the loader as its train dataloader (``LoaderTrainer``): a tiny
GPT-2 built from a config trains (the loss falls), every epoch has its own order, and a fresh
``Trainer`` resumed from a checkpoint continues at the exact next batch, with the same losses."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rrweb_dali.loader import make_loader
from rrweb_dali.tokenizer.vocab import BOS_ID, EOS_ID, PAD_ID

transformers = pytest.importorskip("transformers", reason="the dev extra installs transformers")

from rrweb_dali.integrations.huggingface import LOADER_STATE_NAME, LoaderTrainer  # noqa: E402

BATCH, STEPS, SAVE_AT = 8, 30, 12  # 40 sessions: 5 batches an epoch; step 12 is epoch 2, batch 2


class RecordingTrainer(LoaderTrainer):
    """Records the ``index`` and the loss of every batch it trains on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[list[int]] = []
        self.losses: list[float] = []

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.seen.append(inputs["index"].tolist())
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.losses.append(float(loss))
        return loss


def tiny_gpt2(vocab_size: int):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=vocab_size,
        n_positions=128,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return transformers.GPT2LMHeadModel(config)


def arguments(out, **overrides):
    options = dict(
        output_dir=str(out),
        max_steps=STEPS,
        per_device_train_batch_size=BATCH,
        learning_rate=1e-2,
        save_strategy="steps",
        save_steps=SAVE_AT,
        logging_steps=1,
        ignore_data_skip=True,  # the loader resumes itself (LoaderTrainer requires it)
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )
    return transformers.TrainingArguments(**{**options, **overrides})


def loader_for(root):
    return make_loader(root, batch_size=BATCH, device="cpu", seed=1, max_length=64, labels=True)


def trainer_for(root, out, vocab_size, **overrides) -> RecordingTrainer:
    return RecordingTrainer(
        model=tiny_gpt2(vocab_size),
        args=arguments(out, **overrides),
        train_loader=loader_for(root),
    )


@pytest.fixture(scope="module")
def full_run(counting_dataset, vocab_size, tmp_path_factory):
    """One uninterrupted 30-step run (checkpoints at steps 12 and 24): ``(trainer, out)``."""
    root, _ = counting_dataset
    out = tmp_path_factory.mktemp("hf-run")
    trainer = trainer_for(root, out, vocab_size)
    trainer.train()
    return trainer, out


@pytest.mark.slow
def test_trainer_trains_and_each_epoch_has_its_own_order(full_run, counting_dataset):
    trainer, _ = full_run
    root, sessions = counting_dataset
    assert len(trainer.seen) == STEPS
    first, last = trainer.losses[:5], trainer.losses[-5:]
    assert sum(last) / 5 < sum(first) / 5 - 2.0, trainer.losses  # nats
    per_epoch = len(loader_for(root))
    assert per_epoch == 5
    epochs = [trainer.seen[e * per_epoch : (e + 1) * per_epoch] for e in range(STEPS // per_epoch)]
    for e, got in enumerate(epochs):  # the Trainer's set_epoch(e) gives epoch e's order
        reference = loader_for(root)
        reference.set_epoch(e)
        assert got == [b["index"].tolist() for b in reference]
        assert sorted(i for batch in got for i in batch) == list(range(len(sessions)))
    assert epochs[0] != epochs[1]


@pytest.mark.slow
def test_a_resumed_trainer_continues_at_the_exact_next_batch(
    full_run, counting_dataset, vocab_size, tmp_path
):
    trainer, out = full_run
    root, _ = counting_dataset
    checkpoint = out / f"checkpoint-{SAVE_AT}"
    state = json.loads((checkpoint / LOADER_STATE_NAME).read_text())
    assert (state["epoch"], state["consumed"]) == (2, 2 * BATCH)  # step 12: epoch 2, 2 batches
    resumed = trainer_for(root, out, vocab_size)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.seen == trainer.seen[SAVE_AT:]
    assert resumed.losses == pytest.approx(trainer.losses[SAVE_AT:], abs=1e-5)
    # ``True``: the latest checkpoint of the output directory (here the only one).
    shutil.copytree(out / "checkpoint-24", tmp_path / "checkpoint-24")
    again = trainer_for(root, tmp_path, vocab_size)
    again.train(resume_from_checkpoint=True)
    assert again.seen == trainer.seen[24:]


@pytest.mark.slow
def test_unsupported_settings_are_refused(full_run, counting_dataset, vocab_size, tmp_path):
    _, out = full_run
    root, _ = counting_dataset
    with pytest.raises(ValueError, match="ignore_data_skip=True"):
        trainer_for(root, tmp_path, vocab_size, ignore_data_skip=False)
    # 5 batches an epoch cannot be cut into accumulations of 2: a mid-epoch resume is refused.
    accumulating = trainer_for(root, out, vocab_size, gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        accumulating.train(resume_from_checkpoint=str(out / f"checkpoint-{SAVE_AT}"))
    empty = tmp_path / "checkpoint-3"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no loader state"):
        trainer_for(root, tmp_path, vocab_size).train(resume_from_checkpoint=str(empty))
