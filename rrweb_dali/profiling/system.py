"""What a profile records about the machine: memory now (host RSS, GPU), the host, the versions.

Everything here is cheap enough to call twice a second and degrades to ``None`` rather than
failing: a profile must never break a training run because a counter is unavailable.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# Distributions whose versions explain a loader's speed; the absent ones are left out.
VERSIONED = (
    "rrweb-dali",
    "numpy",
    "torch",
    "nvidia-dali-cuda120",
    "nvidia-dali-cuda130",
    "orjson",
    "tokenizers",
)


def rss_bytes() -> int | None:
    """Resident set size of this process: /proc on Linux (a few microseconds), else psutil."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or the platform refuses: no number rather than a guess
        return None


def _torch_cuda():
    """``torch.cuda`` when torch is already imported and a GPU is usable, else None.

    Never imports torch itself: a bench of a torch-free loader must not pay for (or be changed by)
    importing it.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_available() else None
    except Exception:
        return None


def gpu_memory(device: int | None = None) -> tuple[int | None, int | None]:
    """``(allocated, reserved)`` bytes of torch's caching allocator on ``device``, or Nones."""
    cuda = _torch_cuda()
    if cuda is None or not cuda.is_initialized():
        return None, None
    try:
        return int(cuda.memory_allocated(device)), int(cuda.memory_reserved(device))
    except Exception:
        return None, None


def gpu_name(device: int | None = None) -> str | None:
    cuda = _torch_cuda()
    if cuda is None:
        return None
    try:
        return str(cuda.get_device_name(device))
    except Exception:
        return None


def cpu_count() -> int | None:
    """CPUs this process may run on (the affinity mask, which containers narrow), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def total_memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def host_info() -> dict:
    """Host facts for ``meta.json``: name, OS, Python, CPUs, memory, GPU."""
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": cpu_count(),
        "memory_bytes": total_memory_bytes(),
        "gpu": gpu_name(),
    }


def library_versions(names: tuple[str, ...] = VERSIONED) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_revision(cwd: str | Path | None = None) -> str | None:
    """``git rev-parse HEAD`` in ``cwd`` (the working directory by default), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev or None


def environment_meta(cwd: str | Path | None = None) -> dict:
    """The machine part of ``meta.json``: host, versions, git revision."""
    return {
        "host": host_info(),
        "versions": library_versions(),
        "git_revision": git_revision(cwd),
    }
