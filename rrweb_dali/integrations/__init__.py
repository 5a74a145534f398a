"""Glue for training frameworks that cannot take a :class:`~rrweb_dali.loader.Loader` as it is.

Lightning needs none: ``Trainer.fit`` calls ``loader.sampler.set_epoch`` at each epoch and saves
and restores ``state_dict()`` in its checkpoints (the loader has both methods), so
``train_dataloader()`` returns the loader. ``torch.multiprocessing.spawn`` needs none either: a
loader made after ``init_process_group`` takes its rank from the group.

Hugging Face's ``Trainer`` resumes by replaying a torch ``DataLoader``'s sampler, which this loader
has not: :mod:`.huggingface` saves the loader's state in each ``Trainer`` checkpoint and resumes
from it instead (``LoaderTrainer``). Importing it needs ``transformers``.
"""
