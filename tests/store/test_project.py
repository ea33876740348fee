"""Tests for memesh.store.project: the project of a window, on a real directory tree."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from memesh.errors import ValidationError
from memesh.store.db import MIGRATIONS, Database
from memesh.store.memory import MemoryStore
from memesh.store.project import ancestors, git_remote_url, normalise_path, project_for, root_path


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


# -- projects keyed by their git remote ------------------------------------------------------
def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, check=True, timeout=30, capture_output=True)


@pytest.fixture
def clones(tmp_path):
    """One repository checked out at two paths (two "machines"), its remote spelled two ways."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    first, second = tmp_path / "laptop" / "memesh", tmp_path / "devbox" / "src" / "mm"
    for clone, url in ((first, "git@github.com:Acme/Memesh.git"), (second, "https://github.com/Acme/Memesh")):
        clone.mkdir(parents=True)
        git("init", "-q", str(clone))
        git("remote", "add", "origin", url, cwd=clone)
    (second / "pkg").mkdir()
    return first, second


def test_the_same_repository_at_two_paths_is_one_project_named_by_its_remote(clones):
    first, second = clones
    assert project_for(str(first)) == project_for(str(second / "pkg")) == "github.com/Acme/Memesh"


def test_a_work_tree_without_a_network_remote_is_named_by_its_path(tree):
    assert project_for(str(tree / "repo" / "src")) == str(tree / "repo")
    (tree / "repo" / ".git" / "config").write_text('[remote "origin"]\n\turl = /srv/git/repo.git\n')
    assert project_for(str(tree / "repo" / "src")) == str(tree / "repo")


def test_origin_is_preferred_and_a_linked_worktree_reads_the_main_config(clones, tmp_path):
    first, _ = clones
    git("remote", "add", "aaa-mirror", "https://mirror.example.com/acme/memesh.git", cwd=first)
    git("-c", "user.email=t@e", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x", cwd=first)
    git("worktree", "add", "-q", str(tmp_path / "wt"), cwd=first)
    assert git_remote_url(str(first)) == "git@github.com:Acme/Memesh.git"
    assert project_for(str(tmp_path / "wt")) == "github.com/Acme/Memesh"


def test_memories_of_an_older_store_move_to_their_repository_remote_key(clones, tmp_path):
    first, _ = clones
    old = Database(tmp_path / "old.db", migrations=MIGRATIONS[:5])
    with old.write() as conn:  # rows as memesh of schema version 5 wrote them
        for text, project in (("kept across the upgrade", str(first)), ("not in a repository", str(tmp_path))):
            memory_id = conn.execute("INSERT INTO memories(project, content, content_hash, kind, created_at, updated_at) "
                                     "VALUES (?, ?, ?, 'note', 1.0, 1.0)", (project, text, text)).lastrowid
            conn.execute("INSERT INTO memory_fts(rowid, content) VALUES (?, ?)", (memory_id, text))
    old.close()
    upgraded = Database(tmp_path / "old.db")
    try:
        store = MemoryStore(upgraded)
        assert [m["content"] for m in store.recall("upgrade", project="github.com/Acme/Memesh")["memories"]] == [
            "kept across the upgrade"]
        assert store.stats()["byProject"] == {"github.com/Acme/Memesh": 1, str(tmp_path): 1}
    finally:
        upgraded.close()
