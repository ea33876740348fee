"""Pure decisions behind origins and bulk copies: whose deletions are logged, which rows are added, search text."""
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from memesh.store.origin import foreign_deletions
from memesh.store.pg.text import plain
from memesh.store.rows import fresh_entities, rows_from_parsed, stub_names

names = st.text(max_size=6)
who = st.sampled_from(["alice", "bob", None])
where = st.sampled_from(["laptop", "devbox", None])


@settings(max_examples=200)
@given(me=st.tuples(st.sampled_from(["alice", "bob"]), st.sampled_from(["laptop", "devbox"])),
       rows=st.lists(st.tuples(st.integers(1, 99), who, where, names), max_size=8))
def test_a_deletion_is_foreign_exactly_when_a_recorded_writer_differs_from_the_deleter(me, rows):
    logged = foreign_deletions(me, rows)
    assert logged == [(i, user, host) for i, user, host, _ in rows if user is not None and (user, host) != me]


@settings(max_examples=200)
@given(wanted=st.lists(names, unique=True, max_size=8), present=st.dictionaries(names, st.booleans(), max_size=8))
def test_the_rows_added_are_the_new_names_and_stubs_in_their_given_order(wanted, present):
    rows = [(name, "t", 1.0, 2.0, "u", "h") for name in wanted]
    fresh = fresh_entities(rows, present)
    assert [row[0] for row in fresh] == [name for name in wanted if name not in present or present[name]]


@settings(max_examples=200)
@given(relations=st.lists(st.tuples(names, names, names), max_size=8), known=st.sets(names, max_size=6))
def test_stubs_are_the_sorted_endpoints_nobody_knows(relations, known):
    stubs = stub_names(relations, known)
    assert stubs == sorted(set(stubs)) and set(stubs) == {n for r in relations for n in r[:2]} - known


@given(st.dictionaries(names, st.tuples(names, st.lists(names, unique=True, max_size=3)), max_size=5))
def test_parsed_rows_are_stamped_with_the_importer_and_the_time_of_the_import(entities):
    rows = rows_from_parsed(entities, {}, 7.0, ("alice", "laptop"))
    assert [row[:2] for row in rows.entities] == [(name, entity_type) for name, (entity_type, _) in entities.items()]
    assert all(row[2:] == (7.0, 7.0, "alice", "laptop") for row in rows.entities)
    assert [row[:2] for row in rows.observations] == [(n, text) for n, (_, texts) in entities.items() for text in texts]
    assert all(row[2:] == (7.0, "alice", "laptop") for row in rows.observations)


@settings(max_examples=500)
@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_search_text_is_folded_and_stripped_of_diacritics_whatever_the_script(text):
    decomposed = unicodedata.normalize("NFKD", text.lower())
    assert plain(text) == "".join(ch for ch in decomposed if not unicodedata.combining(ch))
