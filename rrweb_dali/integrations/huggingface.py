"""Hugging Face ``Trainer`` with an rrweb-dali loader as its train dataloader, resumable exactly.

The ``Trainer`` resumes a run by rebuilding its torch ``DataLoader`` around accelerate's
``skip_first_batches`` (a sampler that skips the batches already trained on): that needs a
``DataLoader`` with a ``dataset``, and would read every skipped batch again anyway. The loader
instead resumes from its own small state:

* :class:`LoaderStateCallback` writes ``loader.state_dict()`` into every checkpoint folder the
  ``Trainer`` saves (``checkpoint-<step>/rrweb_dali_loader.json``, next to ``trainer_state.json``);
* :func:`load_loader_state` loads it back before training resumes;
* :class:`LoaderTrainer` does both around a ``Trainer``: ``get_train_dataloader()`` is the loader,
  ``train(resume_from_checkpoint=...)`` first loads the checkpoint's loader state. It needs
  ``TrainingArguments(ignore_data_skip=True)``, which switches the ``Trainer``'s own skipping off;
  without it the ``Trainer`` would fail on resume (it raises at construction instead).

Epochs: the ``Trainer`` calls ``loader.set_epoch(epoch)`` before each epoch, so each epoch has its
own order, and a resumed epoch keeps the loaded position. Known deviation: in the resumed epoch
the ``Trainer`` counts its steps from the epoch's start, so the fractional ``state.epoch`` it logs
is low until the next epoch begins (``global_step``, the learning-rate schedule and checkpoint
names are right). For the same reason, with ``gradient_accumulation_steps`` > 1 a mid-epoch
resume is refused when the epoch's batch count is not a multiple of it: the ``Trainer`` would
leave the epoch's last, shorter accumulation without an optimizer step.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrweb_dali.extras import require

require("transformers", "the Hugging Face integration")

from transformers import (  # noqa: E402
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint  # noqa: E402

if TYPE_CHECKING:
    from rrweb_dali.loader import Loader

logger = logging.getLogger(__name__)

LOADER_STATE_NAME = "rrweb_dali_loader.json"


class LoaderStateCallback(TrainerCallback):
    """Saves ``loader.state_dict()`` into each checkpoint folder, on the processes that write
    ``trainer_state.json`` (``args.should_save``: the main one, or one per node with
    ``save_on_each_node``). The state counts the batches of all ranks together: every rank's is
    the same, and every rank resumes from it."""

    def __init__(self, loader: Loader):
        self.loader = loader

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not args.should_save:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not folder.is_dir():  # saved elsewhere (a hyper-parameter search's run folder)
            raise FileNotFoundError(
                f"LoaderStateCallback: no checkpoint folder {folder} to save the loader state in"
            )
        save_loader_state(self.loader, folder)


def save_loader_state(loader: Loader, checkpoint: str | os.PathLike) -> Path:
    """Write ``loader.state_dict()`` as ``checkpoint/rrweb_dali_loader.json`` (atomically: a
    checkpoint never holds half a state); returns the file's path."""
    path = Path(checkpoint) / LOADER_STATE_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(loader.state_dict(), indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def load_loader_state(loader: Loader, checkpoint: str | os.PathLike, **allow: bool) -> None:
    """Resume ``loader`` at the exact next batch of a checkpoint saved with
    :class:`LoaderStateCallback`; ``allow`` goes to ``loader.load_state_dict`` (e.g.
    ``allow_other_seed=True``). A checkpoint without the file raises ``FileNotFoundError``."""
    path = Path(checkpoint) / LOADER_STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the checkpoint has no loader state (was it saved with LoaderStateCallback "
            "or LoaderTrainer?)"
        )
    loader.load_state_dict(json.loads(path.read_text()), **allow)


class LoaderTrainer(Trainer):
    """A ``Trainer`` whose train dataloader is ``train_loader`` (an rrweb-dali loader), saved in
    and resumed from its checkpoints; every other argument is the ``Trainer``'s."""

    def __init__(self, *args: Any, train_loader: Loader, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not self.args.ignore_data_skip:
            raise ValueError(
                "LoaderTrainer needs TrainingArguments(ignore_data_skip=True): the loader resumes "
                "from its own state in the checkpoint, and the Trainer's batch skipping works "
                "only on a torch DataLoader"
            )
        self.train_loader = train_loader
        self.add_callback(LoaderStateCallback(train_loader))

    def get_train_dataloader(self) -> Loader:
        return self.train_loader

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """``Trainer.train``, the loader first resumed from the checkpoint's loader state."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"no valid checkpoint found in {self.args.output_dir}")
        if resume_from_checkpoint:
            load_loader_state(self.train_loader, resume_from_checkpoint)
            self._check_accumulation()
            logger.info(
                "the loader resumes at epoch %d, unit %d",
                self.train_loader.epoch,
                self.train_loader.state_dict()["consumed"],
            )
        return super().train(resume_from_checkpoint=resume_from_checkpoint or None, **kwargs)

    def _check_accumulation(self) -> None:
        steps = self.args.gradient_accumulation_steps
        mid_epoch = self.train_loader.state_dict()["consumed"] > 0
        if mid_epoch and steps > 1 and len(self.train_loader) % steps:
            raise ValueError(
                f"a mid-epoch resume with gradient_accumulation_steps={steps} needs an epoch of a "
                f"multiple of {steps} batches, not {len(self.train_loader)}: the Trainer would "
                "skip the optimizer step of the epoch's last accumulation (use last_batch='drop' "
                "or 'wrap' with a batch count that divides, or resume from an epoch's end)"
            )
