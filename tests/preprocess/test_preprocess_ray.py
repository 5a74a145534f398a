"""The Ray executor runs the same task function and writes the same bytes as the local one."""

from __future__ import annotations

import pytest

from rrweb_dali.preprocess import PreprocessOptions, preprocess

ray = pytest.importorskip(
    "ray", reason="the ray extra is not installed (pip install 'rrweb-dali[ray]')"
)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_output_is_byte_identical_to_local(
    local_ray, tmp_path, synth_corpus, assert_accounting, assert_same_tree
):
    src = synth_corpus(tmp_path / "src", n=16, seed=11)
    opts = PreprocessOptions(group_files=3)
    preprocess([src], tmp_path / "local", opts, workers=2)
    result = preprocess([src], tmp_path / "ray", opts, executor="ray")
    assert result.groups_run == 6
    assert ray.is_initialized()  # a Ray the caller started is left running
    assert_accounting(tmp_path / "ray")
    assert_same_tree(tmp_path / "local", tmp_path / "ray")
