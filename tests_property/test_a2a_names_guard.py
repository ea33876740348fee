"""Pure decisions of the A2A hub: agent names and the front door's guard."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memesh.a2a import names
from memesh.a2a.security import check

projects = st.text(alphabet="abcAB-_. /é1", min_size=0, max_size=20).map(lambda t: "/" + t.strip("/"))


@given(st.text(max_size=100))
def test_clean_always_gives_a_valid_name(raw):
    assert names.is_valid(names.clean(raw))


@given(st.dictionaries(st.text(alphabet="abc-2", min_size=1, max_size=6).map(names.clean), projects, max_size=8), projects)
def test_a_unique_name_is_valid_free_or_already_this_projects_and_stable(known, project):
    base = names.base_name(project)
    name = names.unique_name(base, project, known)
    assert names.is_valid(name)
    assert known.get(name) in (None, project)
    assert names.unique_name(base, project, {**known, name: project}) == name
    if known.get(base) in (None, project):
        assert name == base


headers = st.fixed_dictionaries({}, optional={
    "host": st.sampled_from(["127.0.0.1:7733", "localhost:7733", "evil:7733", "127.0.0.1:1", ""]),
    "origin": st.sampled_from(["http://x", "null"]),
    "authorization": st.sampled_from(["Bearer tok", "Bearer nope", "Basic tok", "bearer tok", ""]),
})


@given(st.sampled_from(["GET", "POST", "HEAD"]), st.sampled_from(["/", "/.well-known/agent-card.json", "/agents/a/",
                                                                  "/agents/a/.well-known/agent-card.json"]),
       headers, st.booleans())
def test_the_guard_lets_through_exactly_local_non_browser_authorised_or_card_requests(method, path, hdrs, accepting):
    refusal = check(method, path, hdrs, 7733, "tok", accepting)
    local = hdrs.get("host") in ("127.0.0.1:7733", "localhost:7733")
    card = method in ("GET", "HEAD") and path.endswith("agent-card.json")
    authorised = hdrs.get("authorization", "").lower() == "bearer tok"
    allowed = local and "origin" not in hdrs and accepting and (card or authorised)
    assert (refusal is None) == allowed
    if refusal is not None:
        status = refusal[0]
        expected = 421 if not local else 403 if "origin" in hdrs else 503 if not accepting else 401
        assert status == expected
