"""fill_entity: an entity too large for one page, shown a page at a time, is shown whole,
in order, each page within its room, and every page moves on."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from memesh.store.pages import fill_entity, size

TEXT = st.text(max_size=60)
OBSERVATION = st.one_of(st.text(max_size=300), st.text(min_size=1, max_size=3000))
RELATION = st.fixed_dictionaries({"from": TEXT, "to": TEXT, "relationType": TEXT})


@given(st.lists(OBSERVATION, max_size=30), st.lists(RELATION, max_size=60), TEXT, st.integers(4000, 60_000))
@settings(max_examples=200, deadline=None)
def test_following_the_pieces_shows_every_observation_and_relation_once_in_order(observations, relations, name, room):
    entity = {"name": name, "entityType": "t", "observations": observations}
    skip, seen_observations, seen_relations, pages = 0, [], [], 0
    total = len(observations) + len(relations)
    while skip < total or pages == 0:
        shown, shown_relations, done = fill_entity(entity, relations, skip, room)
        pages += 1
        assert done > skip or total == 0            # every page moves on
        used = (size(shown) if shown is not None else 0) + sum(size(r) for r in shown_relations)
        assert used <= room                          # within the page's room
        if shown is not None:
            assert shown["name"] == name
            kept = shown["observations"]
            if done < len(observations):             # a last line says how many are still to come
                assert kept[-1].startswith("[memesh:")
                kept = kept[:-1]
            seen_observations += kept
        seen_relations += shown_relations
        skip = done
        if total == 0:
            break
    assert seen_relations == relations
    assert len(seen_observations) == len(observations)
    for original, seen in zip(observations, seen_observations):
        assert seen == original or (seen.endswith(" …[cut]") and original.startswith(seen[:-len(" …[cut]")]))
