"""Discovering raw mode's (and preprocess's) input files: globs never follow directory links."""

from __future__ import annotations

import os

import pytest
from rrweb_dali.external_source.raw import RawFiles

from rrweb_dali.ingest.discover import discover


def _tree(root):
    """Three files, a link to a file outside, and the links that made ``**`` exponential."""
    (root / "a" / "b").mkdir(parents=True)
    for rel in ("a/x.json", "a/b/y.json", "z.json", "a/b/notes.txt"):
        (root / rel).write_text("[]")
    (root.parent / "outside.json").write_text("[]")
    (root / "o.json").symlink_to(root.parent / "outside.json")  # links to files are read
    (root / "a" / "up").symlink_to("..", target_is_directory=True)
    (root / "a" / "b" / "self").symlink_to(".", target_is_directory=True)
    (root / "link-to-a").symlink_to("a", target_is_directory=True)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_glob_double_star_does_not_follow_directory_links(tmp_path, monkeypatch):
    root = tmp_path / "root"
    _tree(root)
    listed = []
    real_scandir = os.scandir

    def counting_scandir(path="."):
        listed.append(os.fspath(path))
        if len(listed) > 50:  # following the links, Python's glob lists on and on
            raise AssertionError(f"enumeration does not stop: {listed[:8]} ...")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    found = [f.relpath for f in discover([str(root / "**" / "*.json")])]
    assert found == ["a/b/y.json", "a/x.json", "o.json", "z.json"]
    assert len(listed) == 3  # root, a, a/b: each real directory once, no link entered
    listed.clear()
    walked = [f.relpath for f in discover([root])]
    assert walked == ["a/b/notes.txt", "a/b/y.json", "a/x.json", "o.json", "z.json"]
    assert [f.relpath for f in discover([str(root / "**")])] == walked
    assert [f.relpath for f in discover([str(root / "*" / "*.json")])] == ["a/x.json"]
    raw = RawFiles.discover(str(root / "**" / "*.json"))
    assert raw.relpaths == tuple(found)
    assert all(os.path.isabs(p) for p in raw.paths)


def test_glob_matches_like_glob_without_links(tmp_path):
    """The component matcher agrees with Python's glob on a tree without links."""
    import glob

    root = tmp_path / "r"
    for rel in ("x.json", "a/y.json", "a/b/z.json.gz", "a/b/c/w.json", "d/v.txt", "ab/q.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("[]")
    for pattern in ("**/*.json", "*", "a/*/*.gz", "**/c/*", "a*/**/*.json*", "[ab]/*.json", "?/*"):
        want = set()
        for m in glob.glob(str(root / pattern), recursive=True):
            if os.path.isdir(m):
                want |= {os.path.relpath(p, root) for p in glob.glob(m + "/**/*", recursive=True)
                         if os.path.isfile(p)}  # fmt: skip
            else:
                want.add(os.path.relpath(m, root))
        got = {f.path for f in discover([str(root / pattern)])}
        assert {os.path.relpath(p, root) for p in got} == want, pattern
