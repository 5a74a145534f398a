"""The plan and transport options validate themselves, naming the option."""

from __future__ import annotations

import numpy as np
import pytest
from rrweb_dali.external_source.options import PlanOptions, Transport


def test_integers_of_any_kind_are_stored_as_int():
    plan = PlanOptions(batch_size=np.int64(8), seed=np.int32(3), max_length=np.int16(100))
    assert (plan.batch_size, plan.seed, plan.max_length) == (8, 3, 100)
    assert all(type(v) is int for v in (plan.batch_size, plan.seed, plan.max_length))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"batch_size": "8"}, TypeError, "batch_size must be an int"),
        ({"batch_size": True}, TypeError, "batch_size must be an int"),
        ({"batch_size": 8.0}, TypeError, "batch_size must be an int"),
        ({"batch_size": 8, "seed": -1}, ValueError, "seed"),
        ({"batch_size": 8, "last_batch": "pad"}, ValueError, "last_batch"),
        ({"batch_size": 8, "packing": 64, "bucketing": True}, ValueError, "exclude"),
        ({"batch_size": 8, "packing": 64, "pad_to": 64}, ValueError, "pad_to"),
        ({"batch_size": 8, "pad_multiple": 0}, ValueError, "pad_multiple"),
    ],
)
def test_bad_plans_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        PlanOptions(**kwargs)


def test_transport_is_not_part_of_the_plan():
    plan = PlanOptions(batch_size=8, bucketing=True)
    assert "batches_per_call" not in plan.plan_key(100) and "pad_on_host" not in plan.to_dict()
    with pytest.raises(ValueError, match="batches_per_call"):
        Transport(batches_per_call=0)
