"""``make_loader``'s signature and checks, as a DataLoader user expects them: ``batch_size``
required and validated before use, the device chosen from what torch sees, and a warning when
uncapped rows can be very long."""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pytest
import torch

from rrweb_dali.loader import make_loader
from rrweb_dali.loader.make import LONG_ROW_WARNING, resolve_device


def test_batch_size_is_required_and_has_no_default():
    parameter = inspect.signature(make_loader).parameters["batch_size"]
    assert parameter.default is inspect.Parameter.empty
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(TypeError, match="batch_size"):
        make_loader("anywhere")


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (0, ValueError, "at least 1"),
        (-3, ValueError, "at least 1"),
        ("8", TypeError, "must be an int, got '8' \\(str\\)"),
        (8.0, TypeError, "must be an int"),
        (True, TypeError, "must be an int"),
    ],
)
def test_batch_size_is_checked_before_anything_else(bad, error, message, tmp_path):
    # tmp_path is no dataset: the batch size must fail first, with its own message.
    with pytest.raises(error, match=message):
        make_loader(tmp_path, batch_size=bad, device="cpu")


def test_numpy_batch_size_is_accepted(dataset):
    root, _ = dataset
    loader = make_loader(root, batch_size=np.int64(8), device="cpu")
    assert loader.plan.batch_size == 8 and type(loader.plan.batch_size) is int


def test_device_auto_follows_torch():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert inspect.signature(make_loader).parameters["device"].default == "auto"
    assert resolve_device("auto") == expected
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_default_device_runs_here(dataset):
    root, _ = dataset
    if torch.cuda.is_available():
        pytest.skip("a GPU machine: the CPU default is what is checked here")
    with make_loader(root, batch_size=16, seed=0) as loader:
        batch = next(iter(loader))
    assert batch["input_ids"].device.type == "cpu"
    assert batch["input_ids"].shape[0] == 16


def test_long_uncapped_rows_warn_once(tmp_path, write_dataset, caplog):
    root = tmp_path / "long"
    sessions = write_dataset(root, n=12, shards=1, max_len=LONG_ROW_WARNING * 2)
    longest = max(len(s) for s in sessions)
    assert longest > LONG_ROW_WARNING
    with caplog.at_level(logging.WARNING, logger="rrweb_dali.loader.make"):
        make_loader(root, batch_size=4, device="cpu")
    warnings = [r.getMessage() for r in caplog.records if "max_length" in r.getMessage()]
    assert len(warnings) == 1 and f"{longest} tokens" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rrweb_dali.loader.make"):
        make_loader(root, batch_size=4, device="cpu", max_length=4096)
        make_loader(root, batch_size=4, device="cpu", packing=4096)
    assert not [r for r in caplog.records if "max_length" in r.getMessage()]


def test_short_rows_do_not_warn(dataset, caplog):
    root, sessions = dataset
    assert max(len(s) for s in sessions) <= LONG_ROW_WARNING
    with caplog.at_level(logging.WARNING, logger="rrweb_dali.loader.make"):
        make_loader(root, batch_size=4, device="cpu")
    assert not [r for r in caplog.records if "max_length" in r.getMessage()]
