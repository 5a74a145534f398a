"""Every mistake a user can make on the command line: one ``error:`` line on stderr, exit status 2,
no traceback. Each case runs ``python -m rrweb_dali`` as a subprocess, as a user would."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rrweb_dali.commands.demo import sample_files

# A missing optional dependency, made real: ``sys.modules[name] = None`` makes ``import name``
# raise ImportError in the child, exactly as in an install without it.
WITHOUT = (
    "import sys; sys.modules[{mod!r}] = None; from rrweb_dali.cli import main; sys.exit(main())"
)


def run_cli(
    args: list[str], cwd: Path, without: str | None = None, **kw
) -> subprocess.CompletedProcess:
    prefix = ["-c", WITHOUT.format(mod=without)] if without else ["-m", "rrweb_dali"]
    return subprocess.run(
        [sys.executable, *prefix, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def assert_usage_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    detail = f"rc {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 2, detail
    assert "Traceback" not in result.stderr + result.stdout, detail
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, detail
    for needle in needles:
        assert needle in errors[0], detail


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, write_dataset) -> Path:
    """A dataset ``ds``, a corpus ``src`` (two bundled samples), a file, a non-empty folder."""
    root = tmp_path_factory.mktemp("cli")
    write_dataset(root / "ds", n=20, shards=1)
    (root / "src").mkdir()
    for sample in sample_files()[:2]:
        (root / "src" / sample.name).write_bytes(sample.read_bytes())
    (root / "a-file").write_text("not a directory\n")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("the user's own file\n")
    (root / "empty").mkdir()
    return root


CASES = {
    # profile
    "profile: path does not exist": (
        ["profile", "nope", "--out", "runs"],
        ["nope", "not a preprocessed dataset"],
    ),
    "profile: not a dataset": (["profile", "empty", "--out", "runs"], ["no manifest.json"]),
    "profile: --batch-size 0": (
        ["profile", "ds", "--out", "runs", "--batch-size", "0"],
        ["--batch-size"],
    ),
    "profile: --batch-size x": (
        ["profile", "ds", "--out", "runs", "--batch-size", "x"],
        ["--batch-size"],
    ),
    "profile: --seconds 0": (["profile", "ds", "--out", "runs", "--seconds", "0"], ["--seconds"]),
    "profile: --out a file": (["profile", "ds", "--out", "a-file"], ["a-file", "is a file"]),
    "profile: abbreviated option": (
        ["profile", "ds", "--out", "runs", "--batch", "4"],
        ["--batch"],
    ),
    # preprocess
    "preprocess: --out under a file": (["preprocess", "src", "--out", "a-file/ds"], ["a-file"]),
    "preprocess: --out a file": (
        ["preprocess", "src", "--out", "a-file"],
        ["a-file", "not a directory"],
    ),
    "preprocess: --out a non-dataset folder": (
        ["preprocess", "src", "--out", "mine"],
        ["not a dataset", "notes.txt"],
    ),
    "preprocess: --out is SRC": (["preprocess", "src", "--out", "src"], ["also the output"]),
    "preprocess: SRC missing": (
        ["preprocess", "nothing-here", "--out", "new"],
        ["nothing-here", "does not exist"],
    ),
    "preprocess: --max-token (prefix of --max-tokens)": (
        ["preprocess", "src", "--out", "new", "--max-token", "100"],
        ["--max-token"],
    ),
    "preprocess: SRC is a dataset": (
        ["preprocess", "ds", "--out", "new"],
        ["is a preprocessed dataset"],
    ),
    # the others
    "inspect: missing file": (["inspect", "nope.json"], ["nope.json"]),
    "inspect: a folder that is not a dataset": (
        ["inspect", "empty"],
        ["not a preprocessed dataset"],
    ),
    "verify: not a dataset": (["verify", "empty"], ["manifest"]),
    "warm: SRC missing": (["warm", "nothing-here", "--cache-dir", "cache"], ["nothing-here"]),
    "synth: -n 0": (["synth", "--out", "corpus", "-n", "0"], ["-n"]),
    "synth: -n with --scale": (["synth", "--out", "corpus", "-n", "5", "--scale"], ["--scale"]),
    "dashboard: runs missing": (["dashboard", "no-runs"], ["no-runs"]),
    "dashboard: --port x": (["dashboard", "empty", "--port", "x"], ["--port"]),
    "unknown command": (["trian"], ["trian"]),
}


@pytest.mark.parametrize("case", sorted(CASES), ids=sorted(CASES))
def test_mistake_is_one_error_line_and_status_2(case, workspace):
    args, needles = CASES[case]
    assert_usage_error(run_cli(args, workspace), *needles)
    assert not (workspace / "new").exists()  # nothing written for a refused command
    assert sorted(p.name for p in (workspace / "mine").iterdir()) == ["notes.txt"]


def test_cuda_on_a_machine_without_one(workspace):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the mistake cannot be made here")
    result = run_cli(["profile", "ds", "--out", "runs", "--device", "cuda"], workspace)
    assert_usage_error(result, "no CUDA device", "device='cpu'")


@pytest.mark.parametrize(
    "args, module, extra",
    [
        (["demo", "--out", "demo"], "torch", "[torch]"),
        (["demo", "--out", "demo"], "nvidia.dali", "[dali]"),
        (["profile", "ds", "--out", "runs", "--device", "cpu"], "torch", "[torch]"),
        (["profile", "ds", "--out", "runs", "--device", "cpu"], "nvidia.dali", "[dali]"),
        (["dashboard", "empty"], "streamlit", "[dashboard]"),
        (["preprocess", "src", "--out", "new", "--executor", "ray"], "ray", "[ray]"),
    ],
    ids=["demo-torch", "demo-dali", "profile-torch", "profile-dali", "dashboard", "ray"],
)
def test_missing_optional_dependency_names_its_extra(args, module, extra, workspace):
    result = run_cli(args, workspace, without=module)
    assert_usage_error(result, "not installed", f"pip install 'rrweb-dali{extra}'")
    assert not (workspace / "demo").exists()  # the demo stops before its first stage


def test_full_disk_is_one_line_and_a_rerun_finishes(workspace, tmp_path):
    """The output side failing mid-run (writes over RLIMIT_FSIZE fail as a full disk does):
    one line naming the dataset; then a rerun without the limit completes."""

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "ds"
    result = run_cli(
        ["preprocess", str(workspace / "src"), "--out", str(out)], tmp_path, preexec_fn=small_files
    )
    assert_usage_error(result, "writing the dataset", "run the same command again")
    assert not (out / "manifest.json").exists()  # nothing half-published
    again = run_cli(["preprocess", str(workspace / "src"), "--out", str(out)], tmp_path)
    assert again.returncode == 0, again.stderr
    assert (out / "manifest.json").is_file()


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes into read-only folders: not testable as root"
)
def test_read_only_output_is_one_line(workspace, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli(
            ["preprocess", str(workspace / "src"), "--out", str(locked / "ds")], tmp_path
        )
    finally:
        locked.chmod(0o755)
    assert_usage_error(result, "Permission denied")


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(workspace):
    """An internal failure (a command raising KeyError) is exit 1 with one line saying how to see
    more; ``--debug`` shows the traceback."""
    code = (
        "import sys\n"
        "from rrweb_dali import cli\n"
        "from rrweb_dali.commands import verify\n"
        "def boom(args):\n"
        "    raise KeyError('internal')\n"
        "verify.main = boom\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    plain = subprocess.run(
        [sys.executable, "-c", code, "verify", "x"], capture_output=True, text=True, cwd=workspace
    )
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().count("\n") == 0
    assert "unexpected KeyError" in plain.stderr and "--debug" in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-c", code, "--debug", "verify", "x"],
        capture_output=True,
        text=True,
        cwd=workspace,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr
