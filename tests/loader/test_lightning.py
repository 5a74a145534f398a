"""Lightning's own ``Trainer.fit`` (one CPU process) reshuffles every epoch through the loader's
``sampler``, with ``limit_train_batches`` cutting every pass short."""

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
