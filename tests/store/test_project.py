"""Tests for memesh.store.project: the project of a window, on a real directory tree."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from memesh.errors import ValidationError
from memesh.store.project import ancestors, normalise_path, project_for, root_path


@pytest.fixture
def tree(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / ".git").mkdir()
    (tmp_path / "plain" / "deep").mkdir(parents=True)
    return tmp_path


def test_a_directory_inside_a_git_work_tree_belongs_to_the_top_of_that_tree(tree):
    assert project_for(str(tree / "repo" / "src" / "pkg")) == str(tree / "repo")
    assert project_for(str(tree / "repo")) == str(tree / "repo")


def test_a_directory_outside_any_work_tree_is_its_own_project(tree):
    assert project_for(str(tree / "plain" / "deep")) == str(tree / "plain" / "deep")


def test_a_dot_git_file_marks_a_worktree_or_submodule(tree):
    (tree / "plain" / ".git").write_text("gitdir: /elsewhere\n")
    assert project_for(str(tree / "plain" / "deep")) == str(tree / "plain")


def test_a_repository_made_by_git_init_is_found(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(tmp_path / "made")], check=True, timeout=30)
    (tmp_path / "made" / "docs").mkdir()
    assert project_for(str(tmp_path / "made" / "docs")) == str(tmp_path / "made")


def test_the_first_file_root_is_used_instead_of_the_cwd(tree):
    roots = ["https://example.com/x", {"uri": f"file://{tree}/repo/src", "name": "src"}, f"file://{tree}/plain"]
    assert project_for(str(tree / "plain"), roots) == str(tree / "repo")
    assert project_for(str(tree / "plain"), ["https://example.com/x"]) == str(tree / "plain")


def test_root_uris_are_decoded_and_remote_hosts_are_skipped():
    assert root_path("file:///home/me/my%20project") == "/home/me/my project"
    assert root_path("file://localhost/srv/x") == "/srv/x"
    assert root_path("file://otherhost/srv/x") is None
    assert root_path({"uri": 3}) is None and root_path(None) is None


def test_paths_are_normalised_without_the_filesystem():
    assert normalise_path("//a/./b//c/../") == "/a/b"
    assert normalise_path("/") == "/"
    assert ancestors("/a/b") == ["/a/b", "/a", "/"]
    for bad in ("relative", "", "/a\x00b"):
        with pytest.raises(ValidationError, match="^cwd:"):
            normalise_path(bad)
