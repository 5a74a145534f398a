"""The resumable state of a loader: ``(seed, epoch, units consumed globally)`` plus a plan check.

Because an epoch's sequence depends only on the seed, the epoch and the plan options (never on the
world size), this small state is enough to resume at the exact next batch, on the same number of
ranks or a different one: the new ranks re-plan the rest of the epoch from position ``consumed``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STATE_VERSION = 1


@dataclass(frozen=True)
class LoaderState:
    """Where a loader is: ``consumed`` units (sessions, or rows when packing) of ``epoch`` are done.

    ``plan`` holds what must be equal for the sequence to be the same (dataset size, shuffling,
    bucketing or packing options); ``world_size`` and ``rank`` are informative only.
    """

    seed: int
    epoch: int
    consumed: int
    plan: dict = field(default_factory=dict)
    world_size: int = 1
    rank: int = 0
    version: int = STATE_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LoaderState:
        if int(d.get("version", -1)) != STATE_VERSION:
            raise ValueError(
                f"loader state version {d.get('version')!r}, this library reads {STATE_VERSION}"
            )
        return cls(
            seed=int(d["seed"]),
            epoch=int(d["epoch"]),
            consumed=int(d["consumed"]),
            plan=dict(d.get("plan", {})),
            world_size=int(d.get("world_size", 1)),
            rank=int(d.get("rank", 0)),
        )

    def check_plan(self, plan: dict) -> None:
        """Raise ``ValueError`` if this state was taken under a different plan."""
        diff = {
            k: (self.plan.get(k), plan.get(k))
            for k in sorted(set(self.plan) | set(plan))
            if self.plan.get(k) != plan.get(k)
        }
        if diff:
            detail = ", ".join(f"{k}: saved {a!r} != now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"loader state does not fit this loader's plan ({detail})")
