"""project_for over generated directory trees: deterministic, idempotent on its result, and
always the cwd or one of its ancestors (the nearest work tree, if there is one)."""
from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from memesh.store.project import ancestors, is_remote_key, normalise_path, normalise_remote, project_for

# Few distinct names so that generated work trees often sit on the generated cwd's path;
# ".", ".." and "" (a doubled slash) exercise normalisation.
segment = st.sampled_from(["a", "b", "src", "é", "with space", ".", "..", ""])
spelled = st.lists(segment, max_size=7).map(lambda parts: "/" + "/".join(parts))
directory = spelled.map(normalise_path)
work_trees = st.frozensets(directory, max_size=6)


def is_ancestor_or_self(ancestor: str, path: str) -> bool:
    return ancestor == path or path.startswith(ancestor.rstrip("/") + "/")


@given(spelled, work_trees)
def test_the_project_is_the_cwd_or_an_ancestor_of_it(cwd, trees):
    project = project_for(cwd, is_work_tree=trees.__contains__)
    assert is_ancestor_or_self(project, normalise_path(cwd))


@given(spelled, work_trees)
def test_the_project_is_the_nearest_work_tree_else_the_cwd_itself(cwd, trees):
    project = project_for(cwd, is_work_tree=trees.__contains__)
    enclosing = [d for d in ancestors(normalise_path(cwd)) if d in trees]
    assert project == (enclosing[0] if enclosing else normalise_path(cwd))


@given(spelled, work_trees)
def test_the_same_inputs_give_the_same_project_however_the_cwd_is_spelled(cwd, trees):
    first = project_for(cwd, is_work_tree=trees.__contains__)
    assert first == project_for(cwd, is_work_tree=trees.__contains__)
    assert first == project_for(normalise_path(cwd) + "/", is_work_tree=trees.__contains__)
    assert first == project_for("/" + cwd + "/.", is_work_tree=trees.__contains__)


@given(spelled, work_trees)
def test_the_project_of_a_project_is_itself(cwd, trees):
    project = project_for(cwd, is_work_tree=trees.__contains__)
    assert project_for(project, is_work_tree=trees.__contains__) == project
    assert project == normalise_path(project) and posixpath.isabs(project)


@given(spelled, directory, work_trees)
def test_a_declared_file_root_replaces_the_cwd(cwd, root, trees):
    with_root = project_for(cwd, [{"uri": "https://example.com"}, "file://" + root], is_work_tree=trees.__contains__)
    assert with_root == project_for(root, is_work_tree=trees.__contains__)
    assert is_ancestor_or_self(with_root, root)


# -- remotes ---------------------------------------------------------------------------------
host = st.sampled_from(["github.com", "GitLab.Example.org", "10.0.0.7", "git.internal"])
repo_path = st.lists(st.sampled_from(["acme", "Acme", "team-x", "tools", "memesh", "a.b"]), min_size=1, max_size=3)


@given(host, repo_path, st.sampled_from(["", ".git", "/", ".git/"]), st.sampled_from(["git", "alice", None]))
def test_every_spelling_of_one_remote_gives_one_key(hostname, segments, suffix, user):
    path = "/".join(segments)
    who = f"{user}@" if user else ""
    spellings = [f"https://{who}{hostname}/{path}{suffix}", f"ssh://{who}{hostname}:2222/{path}{suffix}",
                 f"git://{hostname}/{path}{suffix}"]
    if user:
        spellings.append(f"{who}{hostname}:{path}{suffix}")
    keys = {normalise_remote(url) for url in spellings}
    assert keys == {f"{hostname.lower()}/{path}"}
    key = keys.pop()
    assert not key.startswith("/") and is_remote_key(key)


@given(spelled, work_trees, st.sampled_from([None, "/srv/git/x.git", "git@github.com:acme/x.git"]))
def test_a_work_tree_with_a_network_remote_is_named_by_it_else_by_its_path(cwd, trees, remote):
    project = project_for(cwd, is_work_tree=trees.__contains__, remote_of=lambda tree: remote)
    enclosing = [d for d in ancestors(normalise_path(cwd)) if d in trees]
    if enclosing and remote and not remote.startswith("/"):
        assert project == "github.com/acme/x"
    else:
        assert project == (enclosing[0] if enclosing else normalise_path(cwd))
