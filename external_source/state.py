"""The resumable state of a loader: ``(seed, epoch, units consumed globally)`` plus what it fits.

Because an epoch's sequence depends only on the seed, the epoch and the plan options (never on the
world size), this small state is enough to resume at the exact next batch, on the same number of
ranks or a different one: the new ranks re-plan the rest of the epoch from position ``consumed``.

A state also names what it was taken on: the dataset's ``fingerprint`` (a digest of its shards'
SHA-256, see ``ShardReader.fingerprint``) and the plan options. Applying it to another dataset,
seed or plan would silently train on other rows than the ones the state says were seen, so
:meth:`LoaderState.check` refuses that unless the caller allows it by name. Every field is type
checked (never coerced: ``"80"``, ``80.9`` and ``True`` are not epochs) and every error names the
field, as a :class:`LoaderStateError` (a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

STATE_VERSION = 2


class LoaderStateError(ValueError):
    """A loader state that is malformed, or was taken on another dataset, seed or plan."""


def _int_field(d: Mapping, name: str, minimum: int = 0) -> int:
    if name not in d:
        raise LoaderStateError(f"loader state has no {name!r} field")
    value = d[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoaderStateError(
            f"loader state field {name!r} must be an int, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise LoaderStateError(f"loader state field {name!r} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class LoaderState:
    """Where a loader is: ``consumed`` units (sessions, or rows when packing) of ``epoch`` done.

    ``consumed`` equal to the epoch's units means the epoch is finished. ``world_size`` and
    ``rank`` say where the state was taken; resuming on another world size is supported.
    """

    seed: int
    epoch: int
    consumed: int
    dataset: str
    plan: dict = field(default_factory=dict)
    world_size: int = 1
    rank: int = 0
    version: int = STATE_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> LoaderState:
        """Validate a saved state (the dict ``Loader.state_dict()`` returned)."""
        if not isinstance(d, Mapping):
            raise LoaderStateError(
                f"a loader state is the dict Loader.state_dict() returned, got {type(d).__name__}"
            )
        version = d.get("version")
        if version != STATE_VERSION:
            raise LoaderStateError(
                f"loader state field 'version' is {version!r}; this library reads version "
                f"{STATE_VERSION} (states of version 1 carry no dataset fingerprint)"
            )
        if not isinstance(d.get("dataset"), str) or not d["dataset"]:
            raise LoaderStateError("loader state field 'dataset' must be a non-empty str")
        if not isinstance(d.get("plan"), Mapping):
            raise LoaderStateError("loader state field 'plan' must be a dict")
        world_size = _int_field(d, "world_size", minimum=1)
        rank = _int_field(d, "rank")
        if rank >= world_size:
            raise LoaderStateError(
                f"loader state field 'rank' is {rank}, outside its world_size {world_size}"
            )
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise LoaderStateError(f"loader state has unknown fields {sorted(unknown)}")
        return cls(
            seed=_int_field(d, "seed"),
            epoch=_int_field(d, "epoch"),
            consumed=_int_field(d, "consumed"),
            dataset=d["dataset"],
            plan=dict(d["plan"]),
            world_size=world_size,
            rank=rank,
        )

    def check(
        self,
        dataset: str,
        seed: int,
        plan: Mapping,
        allow_other_dataset: bool = False,
        allow_other_seed: bool = False,
    ) -> None:
        """Raise :class:`LoaderStateError` unless this state fits a loader with these values.

        The plan options always have to agree (the position would mean other units otherwise);
        the dataset and the seed only unless the caller allows a change by name.
        """
        problems = []
        if self.dataset != dataset and not allow_other_dataset:
            problems.append(
                f"it was taken on another dataset (fingerprint {self.dataset}, this loader's is "
                f"{dataset}; pass allow_other_dataset=True to apply the position anyway)"
            )
        if self.seed != seed and not allow_other_seed:
            problems.append(
                f"it was taken with seed {self.seed}, this loader has seed {seed} (build the "
                "loader with the saved seed, or pass allow_other_seed=True to keep this one)"
            )
        keys = sorted(set(self.plan) | set(plan))
        diff = [
            f"{k}: saved {self.plan.get(k)!r} != now {plan.get(k)!r}"
            for k in keys
            if self.plan.get(k) != plan.get(k)
        ]
        if diff:
            problems.append(f"its plan differs ({', '.join(diff)})")
        if problems:
            raise LoaderStateError("loader state does not fit this loader: " + "; ".join(problems))
