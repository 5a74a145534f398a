"""One ``rrweb-dali profile`` run: the real loader, an optional simulated step, the run files.

The step stands in for the model so the loader is measured under the load it will see: on a GPU
``k`` matmuls of a fixed size, ``k`` calibrated so that they take ``step_ms``, then a synchronize
(like a real step, which ends when the GPU is done); on the CPU a sleep, because a GPU step does
not compete with the loader for CPU time and a busy loop here would.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from rrweb_dali.loader.distributed import local_device_id
from rrweb_dali.profiling.recorder import profile

logger = logging.getLogger(__name__)


@dataclass
class ProfileSettings:
    """What ``rrweb-dali profile`` was asked to do; stored in ``meta.json`` as ``settings``."""

    shards: Sequence[str]
    runs_dir: str
    device: str = "cpu"
    batch_size: int = 32
    seconds: float | None = None
    epochs: int | None = None
    step_ms: float = 0.0
    name: str | None = None
    seed: int = 0
    interval_s: float = 0.5
    run_id: str | None = None
    loader_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seconds is not None and self.epochs is not None:
            raise ValueError("give seconds or epochs, not both")
        if self.seconds is None and self.epochs is None:
            self.epochs = 1
        if (self.seconds is not None and self.seconds <= 0) or (self.epochs or 1) < 1:
            raise ValueError("seconds must be positive and epochs at least 1")
        if self.step_ms < 0:
            raise ValueError("step_ms must not be negative")

    @property
    def run_name(self) -> str:
        return self.name or f"dali-{self.device}-b{self.batch_size}"


# Keys of storage options whose values are credentials: meta.json says they were given, never
# what they are (run folders get shared; a report carries meta.json's settings).
SECRET_KEY = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)
REDACTED = "<redacted>"


def redact_options(options: object) -> object:
    """``options`` with the values of credential-like keys (at any depth) replaced by
    :data:`REDACTED`; ``endpoint_url`` and the like are kept, they tell runs apart."""
    if isinstance(options, dict):
        return {
            k: REDACTED if SECRET_KEY.search(str(k)) else redact_options(v)
            for k, v in options.items()
        }
    if isinstance(options, (list, tuple)):
        return [redact_options(v) for v in options]
    return options


def settings_meta(settings: ProfileSettings) -> dict:
    """``settings`` for ``meta.json``, the storage options' credentials redacted."""
    out = {**asdict(settings), "shards": [str(s) for s in settings.shards]}
    if "storage_options" in out["loader_options"]:
        out["loader_options"] = {
            **out["loader_options"],
            "storage_options": redact_options(out["loader_options"]["storage_options"]),
        }
    return out


class SleepStep:
    """A CPU stand-in for a GPU step: the thread sleeps ``ms`` and the CPU stays free."""

    def __init__(self, ms: float):
        self.ms = ms

    def __call__(self, batch) -> None:
        if self.ms > 0:
            time.sleep(self.ms / 1000.0)

    def describe(self) -> dict:
        return {"kind": "sleep", "ms": self.ms}


class CudaMatmulStep:
    """``reps`` float32 matmuls of ``n x n`` on the GPU, calibrated once to take about ``ms``."""

    def __init__(self, ms: float, device, n: int = 2048):
        import torch

        self.ms, self.n, self._torch = ms, n, torch
        self._device = torch.device(device)
        gen = torch.Generator(device=self._device).manual_seed(0)
        self._a = torch.randn(n, n, device=self._device, generator=gen)
        self._b = torch.randn(n, n, device=self._device, generator=gen)
        self._c = torch.empty(n, n, device=self._device)
        self.per_matmul_ms = self._calibrate()
        self.reps = max(1, round(ms / self.per_matmul_ms)) if ms > 0 else 0

    def _mm(self) -> None:
        self._torch.mm(self._a, self._b, out=self._c)

    def _calibrate(self, trials: int = 20) -> float:
        torch = self._torch
        for _ in range(3):
            self._mm()  # warm-up launches
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(self._device)
        start.record()
        for _ in range(trials):
            self._mm()
        end.record()
        torch.cuda.synchronize(self._device)
        return start.elapsed_time(end) / trials

    def __call__(self, batch) -> None:
        for _ in range(self.reps):
            self._mm()
        self._torch.cuda.synchronize(self._device)

    def describe(self) -> dict:
        return {
            "kind": "cuda_matmul",
            "ms": self.ms,
            "n": self.n,
            "reps": self.reps,
            "per_matmul_ms": round(self.per_matmul_ms, 4),
        }


def make_step(gpu: int | None, step_ms: float):
    """The simulated step: GPU matmuls on device ``gpu``, or a sleep when ``gpu`` is None."""
    if gpu is not None and step_ms > 0:
        return CudaMatmulStep(step_ms, f"cuda:{gpu}")
    return SleepStep(step_ms)


# on_progress(batches done, seconds elapsed, batches planned: None when running for a time)
Progress = Callable[[int, float, "int | None"], None]


def run_profile(settings: ProfileSettings, on_progress: Progress | None = None) -> dict:
    """Drive the loader for ``epochs`` epochs or ``seconds`` seconds; returns the summary
    (with ``run_dir``). The loader's pipeline build counts: it is part of time to first batch."""
    from rrweb_dali.loader import make_loader

    loader = make_loader(
        list(settings.shards),
        batch_size=settings.batch_size,
        device=settings.device,
        seed=settings.seed,
        **settings.loader_options,
    )
    gpu = local_device_id(settings.device)
    step = make_step(gpu, settings.step_ms)
    meta = {
        "kind": "profile",
        "settings": settings_meta(settings),
        "step": step.describe(),
    }
    with (
        loader,
        profile(
            loader,
            settings.runs_dir,
            settings.run_name,
            interval_s=settings.interval_s,
            meta=meta,
            run_id=settings.run_id,
            gpu_device=gpu,
        ) as timed,
    ):
        start = time.monotonic()
        done, epochs = 0, 0
        planned = None if settings.seconds is not None else len(loader) * settings.epochs
        while settings.seconds is not None or epochs < settings.epochs:
            before = done
            for batch in timed:
                step(batch)
                done += 1
                elapsed = time.monotonic() - start
                if on_progress is not None:
                    on_progress(done, elapsed, planned)
                if settings.seconds is not None and elapsed >= settings.seconds:
                    break
            else:
                epochs += 1
                if done == before:  # an empty epoch would loop for ever
                    logger.warning("the loader yielded no batch; stopping")
                    break
                continue
            break  # out of time
    summary = dict(timed.profiler.summary or {})
    summary["run_dir"] = str(timed.run_dir)
    summary["epochs_completed"] = epochs
    return summary
