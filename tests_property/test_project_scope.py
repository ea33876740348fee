"""project_for over generated directory trees: deterministic, idempotent on its result, and
always the cwd or one of its ancestors (the nearest work tree, if there is one)."""
from __future__ import annotations

import posixpath

from hypothesis import given
from hypothesis import strategies as st

from memesh.store.project import ancestors, normalise_path, project_for

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
