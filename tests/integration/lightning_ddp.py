"""Lightning ``Trainer.fit`` with ``strategy="ddp"``, ``devices=2`` on the CPU (gloo), as a user
would run it: ``python lightning_ddp.py ROOT OUT [--save-every K] [--ckpt PATH]``. Lightning
starts the second process by running this file again. Each rank writes the ``index`` of every
batch it trained on, by epoch, to ``OUT/seen.<rank>.json``. Run by ``test_lightning_ddp.py``
(not a test module itself)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning.pytorch as pl
import torch

from rrweb_dali.loader import make_loader


class Recorder(pl.LightningModule):
    def __init__(self, root: str, seed: int):
        super().__init__()
        self.root, self.seed = root, seed
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[list[int]]] = {}
        self.loader_rank: tuple[int, int] | None = None

    def train_dataloader(self):
        # Made here, after Lightning set up the process group: the loader takes its rank from it.
        loader = make_loader(self.root, batch_size=8, device="cpu", seed=self.seed)
        self.loader_rank = (loader.rank, loader.world_size)
        return loader

    def training_step(self, batch, batch_idx):
        self.seen.setdefault(self.current_epoch, []).append(batch["index"].tolist())
        return (self.weight * batch["attention_mask"].float().mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("out", type=Path)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--save-every", type=int, help="a checkpoint every K training steps")
    ap.add_argument("--ckpt", help="resume from this Lightning checkpoint")
    args = ap.parse_args()
    callbacks = []
    if args.save_every:
        callbacks.append(
            pl.callbacks.ModelCheckpoint(
                dirpath=args.out / "checkpoints",
                filename="at-{step}",
                every_n_train_steps=args.save_every,
                save_top_k=-1,
            )
        )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=args.epochs,
        callbacks=callbacks,
        enable_checkpointing=bool(callbacks),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = Recorder(args.root, args.seed)
    trainer.fit(model, ckpt_path=args.ckpt)
    result = {
        "rank": trainer.global_rank,
        "world": trainer.world_size,
        "loader": model.loader_rank,
        "seen": model.seen,
    }
    (args.out / f"seen.{trainer.global_rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
