"""Lightning's own ``Trainer.fit`` (one CPU process) reshuffles every epoch through the loader's
``sampler``, with ``limit_train_batches`` cutting every pass short, and resumes from a mid-epoch
checkpoint at the exact next batch. (Two DDP processes: ``tests/integration``.)"""

from __future__ import annotations

import pytest
import torch

from rrweb_dali.loader import make_loader

pl = pytest.importorskip("lightning.pytorch", reason="the test extra installs lightning")


class Recorder(pl.LightningModule):
    def __init__(self, loader):
        super().__init__()
        self.loader = loader
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[torch.Tensor]] = {}

    def train_dataloader(self):
        return self.loader

    def training_step(self, batch, batch_idx):
        self.seen.setdefault(self.current_epoch, []).append(batch["index"].clone())
        return (self.weight * batch["attention_mask"].float().mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_fit_gives_each_epoch_its_own_order(dataset):
    root, _ = dataset
    model = Recorder(make_loader(root, batch_size=16, device="cpu", seed=4))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=3,
        limit_train_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model)
    assert sorted(model.seen) == [0, 1, 2]
    for epoch, got in model.seen.items():
        reference = make_loader(root, batch_size=16, device="cpu", seed=4)
        reference.set_epoch(epoch)
        want = [b["index"].clone() for b, _ in zip(reference, range(2), strict=False)]
        assert len(got) == 2 and all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert not torch.equal(model.seen[0][0], model.seen[1][0])


def test_trainer_fit_resumes_from_a_mid_epoch_checkpoint_exactly(dataset, tmp_path):
    """Lightning saves ``state_dict()`` of a loader that has one (its ``_Stateful`` protocol) in
    each checkpoint and loads it before the resumed fit iterates: the next batch is exact."""
    root, _ = dataset

    def fit(ckpt_path=None) -> Recorder:
        model = Recorder(make_loader(root, batch_size=16, device="cpu", seed=5))
        every_3 = pl.callbacks.ModelCheckpoint(
            dirpath=tmp_path, filename="at-{step}", every_n_train_steps=3, save_top_k=-1
        )
        pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=2,
            callbacks=[every_3],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        ).fit(model, ckpt_path=ckpt_path)
        return model

    full = fit()
    assert len(full.loader) == 13 and [len(full.seen[e]) for e in (0, 1)] == [13, 13]
    resumed = fit(tmp_path / "at-step=15.ckpt")  # step 15: epoch 1, after its second batch
    assert sorted(resumed.seen) == [1] and len(resumed.seen[1]) == 11
    assert all(torch.equal(a, b) for a, b in zip(resumed.seen[1], full.seen[1][2:], strict=True))
