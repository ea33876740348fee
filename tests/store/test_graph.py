"""Tests for memesh.store.graph: reference semantics, search, paging, validation, JSONL, concurrency."""
import io
import json
import multiprocessing
import pickle
import random
import threading
import traceback

import pytest

from memesh.errors import NotFound, ValidationError
from memesh.store import graph as graphmod
from memesh.store.db import MIGRATIONS, Database
from memesh.store.graph import MAX_RESULT_CHARS, KnowledgeGraph
from tests.store.backends import open_backend, run_sql


def ent(name, entity_type="thing", observations=()):
    return {"name": name, "entityType": entity_type, "observations": list(observations)}


def rel(source, target, relation_type="knows"):
    return {"from": source, "to": target, "relationType": relation_type}


@pytest.fixture
def graph(backend, tmp_path):
    """A fresh graph on each backend (SQLite and PostgreSQL)."""
    storage = open_backend(backend, tmp_path)
    yield storage.graph
    storage.close()


def all_pages(call, **kwargs):
    """Follow nextCursor to the end; return (entities, relations, pages)."""
    entities, relations, pages, cursor = [], [], 0, None
    while True:
        page = call(cursor=cursor, **kwargs)
        entities += page["entities"]
        relations += page["relations"]
        pages += 1
        cursor = page.get("nextCursor")
        if cursor is None:
            return entities, relations, pages
        assert pages < 10_000


def names(result):
    return [e["name"] for e in result["entities"]]



# -- create ---------------------------------------------------------------------------
def test_create_entities_returns_only_the_entities_it_created(graph):
    assert graph.create_entities([ent("A", observations=["one"])]) == [ent("A", observations=["one"])]
    created = graph.create_entities([ent("A", "other", ["two"]), ent("B")])
    assert created == [ent("B")]
    assert graph.open_nodes(["A"])["entities"] == [ent("A", observations=["one"])]


def test_a_name_repeated_in_one_batch_is_created_once_and_the_first_wins(graph):
    created = graph.create_entities([ent("A", "first"), ent("A", "second")])
    assert created == [ent("A", "first")]
    assert graph.read_graph()["entities"] == [ent("A", "first")]


def test_repeated_observations_of_a_new_entity_are_stored_once_in_order(graph):
    created = graph.create_entities([ent("A", observations=["x", "y", "x"])])
    assert created[0]["observations"] == ["x", "y"]
    assert graph.read_graph()["entities"][0]["observations"] == ["x", "y"]


def test_create_relations_skips_existing_and_repeated_relations(graph):
    graph.create_entities([ent("A"), ent("B")])
    assert graph.create_relations([rel("A", "B"), rel("A", "B"), rel("B", "A")]) == [rel("A", "B"), rel("B", "A")]
    assert graph.create_relations([rel("A", "B"), rel("A", "B", "likes")]) == [rel("A", "B", "likes")]
    assert len(graph.read_graph()["relations"]) == 3


def test_a_relation_to_an_entity_not_yet_created_is_kept_and_listed(graph):
    graph.create_entities([ent("A")])
    assert graph.create_relations([rel("A", "Ghost")]) == [rel("A", "Ghost")]
    assert graph.read_graph() == {"entities": [ent("A")], "relations": [rel("A", "Ghost")]}
    assert graph.stats()["entities"] == 1


def test_a_relation_survives_until_its_missing_endpoint_is_created(graph):
    graph.create_relations([rel("Early", "Late")])
    assert graph.create_entities([ent("Late", observations=["here now"])]) == [ent("Late", observations=["here now"])]
    assert graph.open_nodes(["Late"]) == {"entities": [ent("Late", observations=["here now"])],
                                          "relations": [rel("Early", "Late")]}
    assert names(graph.search_nodes("here now")) == ["Late"]


# -- observations ---------------------------------------------------------------------
def test_add_observations_reports_only_the_new_contents(graph):
    graph.create_entities([ent("A", observations=["old"])])
    result = graph.add_observations([{"entityName": "A", "contents": ["old", "new", "new"]}])
    assert result == [{"entityName": "A", "addedObservations": ["new"]}]
    assert graph.open_nodes(["A"])["entities"][0]["observations"] == ["old", "new"]


def test_add_observations_twice_to_one_entity_in_a_call_sees_the_first_additions(graph):
    graph.create_entities([ent("A")])
    result = graph.add_observations([{"entityName": "A", "contents": ["x"]},
                                     {"entityName": "A", "contents": ["x", "y"]}])
    assert result == [{"entityName": "A", "addedObservations": ["x"]},
                      {"entityName": "A", "addedObservations": ["y"]}]


def test_add_observations_to_an_unknown_entity_names_it_and_applies_nothing(graph):
    graph.create_entities([ent("A")])
    graph.create_relations([rel("A", "Stub")])
    with pytest.raises(NotFound, match="'Nobody'") as info:
        graph.add_observations([{"entityName": "A", "contents": ["should not stay"]},
                                {"entityName": "Nobody", "contents": ["x"]}])
    assert "observations[1].entityName" in str(info.value)
    with pytest.raises(NotFound, match="'Stub'"):  # a relation endpoint is not an entity
        graph.add_observations([{"entityName": "Stub", "contents": ["x"]}])
    assert graph.open_nodes(["A"])["entities"] == [ent("A")]


def test_delete_observations_counts_what_it_removed_and_ignores_unknowns(graph):
    graph.create_entities([ent("A", observations=["x", "y", "z"])])
    result = graph.delete_observations([{"entityName": "A", "observations": ["x", "z", "nope"]},
                                        {"entityName": "Nobody", "observations": ["x"]}])
    assert result == {"deleted": 2}
    assert graph.open_nodes(["A"])["entities"][0]["observations"] == ["y"]
    assert names(graph.search_nodes("z")) == []


# -- delete ---------------------------------------------------------------------------
def test_delete_entities_removes_their_observations_and_every_relation_touching_them(graph, backend):
    graph.create_entities([ent("A", observations=["a1", "a2"]), ent("B"), ent("C")])
    graph.create_relations([rel("A", "B"), rel("C", "A"), rel("B", "C"), rel("A", "Ghost")])
    assert graph.delete_entities(["A", "Unknown"]) == {"deleted": 1}
    assert graph.read_graph() == {"entities": [ent("B"), ent("C")], "relations": [rel("B", "C")]}
    assert run_sql(backend, "SELECT count(*) FROM observations") == [(0,)]
    assert run_sql(backend, "SELECT name FROM entities ORDER BY name") == [("B",), ("C",)]  # stub gone
    assert run_sql(backend, "SELECT count(*) FROM relations") == [(1,)]
    assert names(graph.search_nodes("a1")) == []


def test_deleting_a_name_only_used_by_relations_removes_those_relations(graph):
    graph.create_entities([ent("A")])
    graph.create_relations([rel("A", "Ghost"), rel("Ghost", "A", "haunts")])
    assert graph.delete_entities(["Ghost"]) == {"deleted": 0}
    assert graph.read_graph()["relations"] == []


def test_delete_relations_counts_removals_ignores_unknowns_and_drops_unused_stubs(graph, backend):
    graph.create_entities([ent("A"), ent("B")])
    graph.create_relations([rel("A", "B"), rel("A", "Ghost")])
    result = graph.delete_relations([rel("A", "B"), rel("A", "Ghost"), rel("X", "Y"), rel("B", "A")])
    assert result == {"deleted": 2}
    assert graph.read_graph() == {"entities": [ent("A"), ent("B")], "relations": []}
    assert run_sql(backend, "SELECT count(*) FROM entities") == [(2,)]


# -- read, open ---------------------------------------------------------------------------
def test_open_nodes_returns_the_named_entities_and_relations_touching_any_of_them(graph):
    graph.create_entities([ent("A"), ent("B"), ent("C")])
    graph.create_relations([rel("A", "B"), rel("C", "A"), rel("B", "C")])
    result = graph.open_nodes(["A", "Missing", "A"])
    assert result == {"entities": [ent("A")], "relations": [rel("A", "B"), rel("C", "A")]}


def test_results_are_plain_json_data_without_timestamps(graph):
    graph.create_entities([ent("A", observations=["x"])])
    graph.create_relations([rel("A", "A")])
    results = [graph.read_graph(), graph.search_nodes("A"), graph.open_nodes(["A"]), graph.stats(),
               graph.create_entities([ent("B")]), graph.delete_entities(["B"]),
               graph.add_observations([{"entityName": "A", "contents": ["y"]}])]

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return type(value) in (str, int)

    for result in results:
        assert plain(result)
        assert json.loads(json.dumps(result)) == result == pickle.loads(pickle.dumps(result))
    assert set(graph.read_graph()["entities"][0]) == {"name", "entityType", "observations"}


def test_timestamps_are_stored_per_entity(graph, backend):
    graph.create_entities([ent("A")])
    [(created, updated)] = run_sql(backend, "SELECT created_at, updated_at FROM entities")
    assert created > 0 and updated >= created


def test_stats_counts_entities_relations_and_observations(graph):
    graph.create_entities([ent("A", observations=["x", "y"]), ent("B")])
    graph.create_relations([rel("A", "B"), rel("A", "Ghost")])
    assert graph.stats() == {"entities": 2, "relations": 2, "observations": 2}


# -- search ---------------------------------------------------------------------------
@pytest.fixture
def languages(graph):
    graph.create_entities([
        ent("Python", "language", ["dynamic typing", "used for scripting"]),
        ent("Rust", "language", ["memory safety without garbage collection"]),
        ent("Guido", "person", ["created Python in 1991"]),
        ent("Notes", "note", ["scripting language comparison: typing matters"]),
    ])
    return graph


def test_search_finds_a_substring_inside_a_word_case_insensitively(languages):
    assert "Python" in names(languages.search_nodes("ython"))
    assert "Python" in names(languages.search_nodes("PYTH"))
    assert names(languages.search_nodes("ollect")) == ["Rust"]


def test_search_matches_all_words_in_any_order(languages):
    assert names(languages.search_nodes("collection garbage"))[0] == "Rust"


def test_search_ranks_a_name_hit_above_an_observation_hit(languages):
    assert names(languages.search_nodes("python")) == ["Python", "Guido"]


def test_search_ranks_all_words_before_any_word_and_words_before_substrings(graph):
    graph.create_entities([ent("one", observations=["alpha"]), ent("two", observations=["alpha beta"]),
                           ent("three", observations=["xalpha betax"]), ent("four", observations=["beta"])])
    assert names(graph.search_nodes("alpha beta")) == ["two", "one", "four", "three"]


def test_search_returns_the_relations_touching_the_found_entities(languages):
    languages.create_relations([rel("Guido", "Python", "created"), rel("Rust", "Notes", "in")])
    assert languages.search_nodes("Guido")["relations"] == [rel("Guido", "Python", "created")]


def test_an_empty_query_lists_every_entity_like_the_reference(languages):
    assert sorted(names(languages.search_nodes(""))) == ["Guido", "Notes", "Python", "Rust"]


@pytest.mark.parametrize("query", ['"', '""', "AND", "OR NOT", "*", "py*", "NEAR(", "NEAR(a b)", "-", "-rust",
                                   "a:b", "name:Python", "(", ")", "^", "[", "]", "?", "%", "_", "\\", "'",
                                   "Python AND", "日本語", "Ärger", "🙂", "x\ny", "\x00", "   ", "{a b}", "+"])
def test_no_query_text_causes_a_search_syntax_error(languages, query):
    result = languages.search_nodes(query)
    assert set(result) <= {"entities", "relations", "nextCursor"}


def test_search_finds_unicode_text_by_word_and_by_substring(graph):
    graph.create_entities([ent("Café", observations=["日本語のテキスト", "Straße"])])
    assert names(graph.search_nodes("cafe")) == ["Café"]
    assert names(graph.search_nodes("本語")) == ["Café"]
    assert names(graph.search_nodes("STRASSE")) == []  # lower-casing, as the reference does
    assert names(graph.search_nodes("straße")) == ["Café"]
    assert names(graph.search_nodes("CAFÉ")) == ["Café"]


def test_search_treats_glob_and_like_characters_literally(graph):
    graph.create_entities([ent("A", observations=["100%_done [x]"]), ent("B", observations=["100 percent"])])
    for query in ("0%_d", "[x]", "%", "_d"):
        assert names(graph.search_nodes(query)) == ["A"], query
    assert names(graph.search_nodes("?")) == []
    assert names(graph.search_nodes("*")) == []


def test_substring_search_still_works_without_the_trigram_index(tmp_path):
    # Every migration but the one that adds the trigram index (SQLite builds before 3.34 lack it).
    database = Database(tmp_path / "old.db",
                        migrations=[(version, (lambda conn: None) if version == 2 else step) for version, step in MIGRATIONS])
    graph = KnowledgeGraph(database)
    graph.create_entities([ent("Python", observations=["ÉCOLE"]), ent("Rust")])
    assert names(graph.search_nodes("ython")) == ["Python"]
    assert names(graph.search_nodes("école")) == ["Python"]
    assert names(graph.search_nodes("y")) == ["Python"]
    database.close()


# -- search past RANK_WINDOW matches: bounded ranking ----------------------------------------
def search_all(graph, query, limit):
    entities, _, _ = all_pages(graph.search_nodes, query=query, limit=limit)
    return names({"entities": entities})


def test_a_large_pass_lists_name_matches_then_the_newest_by_bm25_then_older_ones(graph, monkeypatch):
    monkeypatch.setattr(graphmod, "RANK_WINDOW", 3)
    graph.create_entities([ent("Apple"), ent("n1", observations=["apple apple apple"]),
                           ent("n2", observations=["apple"]), ent("Apple pie"),
                           ent("n3", observations=["apple"]), ent("n4", observations=["apple"]),
                           ent("n5", observations=["apple and a long tail of other words"])])
    found = names(graph.search_nodes("apple", limit=100))
    # Name matches first, however old; then the 3 newest by bm25; then the older ones,
    # newest first, even the strong n1: the documented approximation.
    assert sorted(found[:2]) == ["Apple", "Apple pie"]
    assert found[2:] == ["n3", "n4", "n5", "n2", "n1"]
    for limit in (1, 2, 3, 4):
        assert search_all(graph, "apple", limit) == found


def test_a_large_pass_with_many_name_matches_windows_them_too(graph, monkeypatch):
    monkeypatch.setattr(graphmod, "RANK_WINDOW", 2)
    graph.create_entities([ent(f"kiwi {i}") for i in range(5)] + [ent("other", observations=["kiwi"])])
    found = names(graph.search_nodes("kiwi", limit=100))
    assert sorted(found[:2]) == ["kiwi 3", "kiwi 4"]  # the newest two name matches, by bm25
    assert found[2:] == ["kiwi 2", "kiwi 1", "kiwi 0", "other"]
    assert search_all(graph, "kiwi", 1) == found


def test_a_large_all_words_pass_puts_first_those_with_a_word_in_the_name(graph, monkeypatch):
    monkeypatch.setattr(graphmod, "RANK_WINDOW", 2)
    graph.create_entities([ent("Red", observations=["red car"]), ent("Car", observations=["blue"]),
                           ent("x", observations=["red car"]), ent("y", observations=["red car"]),
                           ent("z", observations=["red car"]), ent("w", observations=["red"]),
                           ent("v", observations=["bored cart"])])
    # every word: Red (word in the name), newest two (y, z), older (x); any word: Car (name),
    # then w; substring: v.
    assert names(graph.search_nodes("red car", limit=100)) == ["Red", "y", "z", "x", "Car", "w", "v"]
    assert search_all(graph, "red car", 3) == ["Red", "y", "z", "x", "Car", "w", "v"]


@pytest.mark.parametrize("query", ['"', "AND", "OR NOT", "NEAR(a b)", "-rust", "name:Python", "{a b}",
                                   "Python AND", "日本語", "a OR b NOT c", "x\ny", "entity_type", "* ^ :"])
def test_no_query_text_causes_a_search_syntax_error_in_a_large_pass(languages, monkeypatch, query):
    monkeypatch.setattr(graphmod, "RANK_WINDOW", 1)
    languages.create_entities([ent(f"{query} {i}", observations=[query, "typing"]) for i in range(3)])
    for text in (query, f"{query} typing", f"typing {query} scripting"):
        assert set(languages.search_nodes(text, limit=2)) <= {"entities", "relations", "nextCursor"}
        all_pages(languages.search_nodes, query=text, limit=2)


VOCABULARY = ["red", "blue", "tree", "stone", "lake", "moon"]


@pytest.mark.parametrize("seed", range(12))
def test_large_passes_page_through_every_match_once_in_pass_order(graph, monkeypatch, seed):
    rng = random.Random(seed)
    monkeypatch.setattr(graphmod, "RANK_WINDOW", rng.choice([1, 2, 3, 5]))
    items = []
    for i in range(40):
        text = " ".join(rng.choices(VOCABULARY + ["x" + rng.choice(VOCABULARY) + "x"], k=rng.randint(0, 4)))
        items.append(ent(f"{rng.choice(VOCABULARY + ['e'])} {i}", rng.choice(VOCABULARY), [text] if text else []))
    graph.create_entities(items)
    for _ in range(4):
        query = " ".join(rng.sample(VOCABULARY, rng.randint(1, 3)))
        words = set(query.split())
        tokens = {e["name"]: set(" ".join([e["name"], e["entityType"], *e["observations"]]).split()) for e in items}
        every = {n for n, t in tokens.items() if words <= t}
        some = {n for n, t in tokens.items() if words & t} - every
        texts = {e["name"]: [e["name"], e["entityType"], *e["observations"]] for e in items}
        substring = {n for n, t in texts.items() if any(query in x.lower() for x in t)} - every - some
        whole = names(graph.search_nodes(query, limit=1000))
        assert len(whole) == len(set(whole))
        assert [set(whole[:len(every)]), set(whole[len(every):len(every) + len(some)]),
                set(whole[len(every) + len(some):])] == [every, some, substring]
        for limit in (1, 3, 7):
            assert search_all(graph, query, limit) == whole


def test_search_past_the_rank_window_pages_across_passes_and_keeps_old_name_matches(graph):
    size = graphmod.RANK_WINDOW + 300
    graph.create_entities([ent("Common Ancestor", observations=["the first one"])]
                          + [ent(f"e{i:04}", observations=[f"common filler {i}"]) for i in range(size)]
                          + [ent(f"both{i}", observations=["common zebra"]) for i in range(5)]
                          + [ent(f"sub{i}", observations=["uncommon zebrax"]) for i in range(3)])
    first = graph.search_nodes("common zebra", limit=10)
    assert sorted(names(first)[:5]) == [f"both{i}" for i in range(5)]  # every word
    assert names(first)[5] == "Common Ancestor"  # the oldest entity, but a name match
    found = search_all(graph, "common zebra", 100)
    assert len(found) == len(set(found)) == 1 + size + 5 + 3
    assert found[:10] == names(first)
    assert sorted(found[-3:]) == ["sub0", "sub1", "sub2"]  # substring matches last
    assert search_all(graph, "common zebra", 333) == found


# -- paging and the size ceiling -------------------------------------------------------------
def test_search_pages_cover_every_match_once_in_rank_order(graph):
    graph.create_entities([ent(f"e{i:02}", observations=["needle" if i % 2 else "needles and a needle"])
                           for i in range(30)])
    first = graph.search_nodes("needle", limit=7)
    assert len(first["entities"]) == 7 and "nextCursor" in first
    entities, _, pages = all_pages(graph.search_nodes, query="needle", limit=7)
    assert sorted(e["name"] for e in entities) == [f"e{i:02}" for i in range(30)]
    assert pages == 5
    assert graph.search_nodes("needle", limit=30).get("nextCursor") is None


def test_read_graph_pages_yield_the_whole_graph_each_item_once(graph):
    graph.create_entities([ent(f"e{i:03}") for i in range(50)])
    graph.create_relations([rel(f"e{i:03}", f"e{(i * 7) % 50:03}") for i in range(50)] + [rel("x", "y")])
    whole = graph.read_graph(limit=1000)
    entities, relations, pages = all_pages(graph.read_graph, limit=9)
    assert entities == whole["entities"] and len(entities) == 50
    assert sorted(map(json.dumps, relations)) == sorted(map(json.dumps, whole["relations"]))
    assert len(relations) == 51 and pages == 12


def test_open_nodes_pages_when_asked_for_more_than_the_limit(graph):
    graph.create_entities([ent(f"e{i}") for i in range(10)])
    entities, _, pages = all_pages(graph.open_nodes, names=[f"e{i}" for i in range(12)], limit=4)
    assert sorted(names({"entities": entities})) == [f"e{i}" for i in range(10)] and pages == 3


def test_pages_stay_under_the_size_ceiling_even_when_indented(graph):
    graph.create_entities([ent(f"e{i:03}", observations=[f"{i} " + "words " * 400, "more " * 200])
                           for i in range(300)])
    for call in (lambda c: graph.read_graph(cursor=c), lambda c: graph.search_nodes("words", cursor=c),
                 lambda c: graph.open_nodes([f"e{i:03}" for i in range(300)], cursor=c)):
        seen, cursor = 0, None
        while True:
            page = call(cursor)
            assert len(json.dumps(page)) <= MAX_RESULT_CHARS
            assert len(json.dumps(page, indent=2, ensure_ascii=False)) <= 80_000
            seen += len(page["entities"])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        assert seen == 300


def test_an_entity_too_big_for_a_page_is_clipped_with_a_note(graph):
    graph.create_entities([ent("Huge", observations=[f"{i} " + "x" * 5000 for i in range(100)]),
                           ent("Single", observations=["y" * 500_000]), ent("Wide", observations=["日本" * 40_000])])
    for page in (graph.open_nodes(["Huge"]), graph.search_nodes("Huge"), graph.read_graph(limit=1)):
        assert len(json.dumps(page)) <= MAX_RESULT_CHARS
        observations = page["entities"][0]["observations"]
        assert observations[0].startswith("0 x") and observations[-1].startswith("[memesh:")
    for name in ("Single", "Wide"):
        page = graph.open_nodes([name])
        assert len(json.dumps(page)) <= MAX_RESULT_CHARS
        first = page["entities"][0]["observations"][0]
        assert first.endswith("…[cut]") and len(first) > 1000
    assert len(graph.read_graph(limit=1)["entities"][0]["observations"]) < 100
    assert len(graph.open_nodes(["Huge"])["entities"]) == 1


def test_a_hub_entity_keeps_the_page_under_the_ceiling_and_counts_omitted_relations(graph):
    graph.create_entities([ent("Hub")])
    graph.create_relations([rel("Hub", f"spoke-{i:05}-" + "z" * 40, "connects to") for i in range(3000)])
    page = graph.open_nodes(["Hub"])
    assert len(json.dumps(page)) <= MAX_RESULT_CHARS
    assert page["omittedRelations"] == 3000 - len(page["relations"]) > 0


@pytest.mark.parametrize("cursor", ["garbage", "", "!!!!", "e30", 5, ["x"],
                                    "eyJ2IjoxLCJrIjoiZ3JhcGgiLCJzIjoiIiwicCI6WyJ4IiwxXX0"])
def test_a_cursor_that_was_not_issued_is_rejected(graph, cursor):
    graph.create_entities([ent("A")])
    for call in (graph.read_graph, lambda cursor: graph.search_nodes("A", cursor=cursor),
                 lambda cursor: graph.open_nodes(["A"], cursor=cursor)):
        with pytest.raises(ValidationError, match="^cursor: "):
            call(cursor=cursor)


def test_a_cursor_only_continues_the_call_it_came_from(graph):
    graph.create_entities([ent(f"e{i}", observations=["common"]) for i in range(5)])
    search_cursor = graph.search_nodes("common", limit=2)["nextCursor"]
    with pytest.raises(ValidationError, match="cursor"):
        graph.search_nodes("other query", cursor=search_cursor)
    with pytest.raises(ValidationError, match="cursor"):
        graph.read_graph(cursor=search_cursor)
    assert len(graph.search_nodes("common", limit=2, cursor=search_cursor)["entities"]) == 2


@pytest.mark.parametrize("limit", [0, -1, True, "10", 1.5, graphmod.MAX_LIMIT + 1])
def test_a_bad_limit_is_rejected_with_its_field_name(graph, limit):
    with pytest.raises(ValidationError, match="^limit: "):
        graph.read_graph(limit=limit)


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda g: g.create_entities([ent("a"), ent("b"), {"name": 3, "entityType": "t", "observations": []}]),
     "entities[2].name: expected a string"),
    (lambda g: g.create_entities([{"name": "a", "observations": []}]), "entities[0].entityType: required field is missing"),
    (lambda g: g.create_entities([ent("a", observations=["ok", None])]), "entities[0].observations[1]: expected a string"),
    (lambda g: g.create_entities({"name": "a"}), "entities: expected an array"),
    (lambda g: g.create_entities(["a"]), "entities[0]: expected an object"),
    (lambda g: g.create_entities([ent("x" * 1001)]), "entities[0].name: longer than 1000"),
    (lambda g: g.create_entities([ent("\ud800")]), "entities[0].name: contains a lone surrogate"),
    (lambda g: g.create_relations([{"from": "a", "to": "b"}]), "relations[0].relationType: required field is missing"),
    (lambda g: g.create_relations([rel("a", ["b"])]), "relations[0].to: expected a string"),
    (lambda g: g.add_observations([{"entityName": "a", "contents": "text"}]), "observations[0].contents: expected an array"),
    (lambda g: g.add_observations([{"contents": []}]), "observations[0].entityName: required field is missing"),
    (lambda g: g.delete_entities(["a", 1]), "entityNames[1]: expected a string"),
    (lambda g: g.delete_observations([{"entityName": "a", "observations": [True]}]),
     "deletions[0].observations[0]: expected a string"),
    (lambda g: g.delete_relations([rel("a", "b"), None]), "relations[1]: expected an object"),
    (lambda g: g.search_nodes(None), "query: expected a string"),
    (lambda g: g.open_nodes("A"), "names: expected an array"),
])
def test_bad_arguments_raise_a_validation_error_naming_the_field(graph, call, message):
    with pytest.raises(ValidationError) as info:
        call(graph)
    assert str(info.value).startswith(message)


def test_a_rejected_batch_changes_nothing(graph):
    with pytest.raises(ValidationError):
        graph.create_entities([ent("fine"), ent(None)])
    assert graph.stats()["entities"] == 0


# -- JSONL -------------------------------------------------------------------------------
REFERENCE_FILE = "\n".join([  # as the reference server writes it: no trailing newline
    '{"type":"entity","name":"Alice","entityType":"person","observations":["likes tea","日本語"]}',
    '{"type":"entity","name":"Bob","entityType":"person","observations":[]}',
    '{"type":"relation","from":"Alice","to":"Bob","relationType":"knows"}',
    '{"type":"relation","from":"Bob","to":"Carol","relationType":"owes"}',
])


def test_import_reads_the_reference_file_format(graph):
    assert graph.import_jsonl(io.StringIO(REFERENCE_FILE)) == {"entities": 2, "relations": 2}
    assert graph.read_graph() == {
        "entities": [ent("Alice", "person", ["likes tea", "日本語"]), ent("Bob", "person")],
        "relations": [rel("Alice", "Bob"), rel("Bob", "Carol", "owes")]}


def test_export_writes_the_reference_line_shapes_sorted(graph):
    graph.create_relations([rel("Bob", "Carol", "owes")])
    graph.create_entities([ent("Bob", "person"), ent("Alice", "person", ["likes tea", "日本語"])])
    graph.create_relations([rel("Alice", "Bob")])
    out = io.StringIO()
    assert graph.export_jsonl(out) == {"entities": 2, "relations": 2}
    assert out.getvalue() == REFERENCE_FILE + "\n"


def test_import_keeps_existing_entities_and_skips_known_relations(graph):
    graph.create_entities([ent("Alice", "robot", ["mine"])])
    graph.create_relations([rel("Alice", "Bob")])
    assert graph.import_jsonl(io.StringIO(REFERENCE_FILE)) == {"entities": 1, "relations": 1}
    assert graph.open_nodes(["Alice"])["entities"] == [ent("Alice", "robot", ["mine"])]
    assert names(graph.search_nodes("person")) == ["Bob"]


def test_import_accepts_bytes_blank_lines_and_a_byte_order_mark(graph):
    lines = [("\ufeff" + REFERENCE_FILE.splitlines()[0] + "\n").encode(), b"\n", b"   \n",
             REFERENCE_FILE.splitlines()[1].encode()]
    assert graph.import_jsonl(lines) == {"entities": 2, "relations": 0}


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "line 3: not valid JSON"),
    ('["a list"]', "line 3: expected a JSON object, got an array"),
    ('{"type":"entity","name":"X","entityType":"t"}', "line 3: observations: required field is missing"),
    ('{"type":"relation","from":"X","to":1,"relationType":"r"}', "line 3: to: expected a string"),
    ('{"type":"memory","name":"X"}', 'line 3: type: expected "entity" or "relation"'),
])
def test_a_malformed_import_line_is_named_and_nothing_is_imported(graph, bad_line, message):
    graph.create_entities([ent("Existing")])
    before = graph.read_graph()
    text = REFERENCE_FILE.splitlines()[0] + "\n\n" + bad_line + "\n" + REFERENCE_FILE.splitlines()[2]
    with pytest.raises(ValidationError) as info:
        graph.import_jsonl(io.StringIO(text))
    assert str(info.value).startswith(message)
    assert graph.read_graph() == before


def test_import_then_export_is_deterministic_whatever_the_creation_order(tmp_path):
    lines = REFERENCE_FILE.splitlines()
    outputs = []
    for order in (lines, lines[::-1]):
        g = KnowledgeGraph(tmp_path / f"{len(outputs)}.db")
        g.import_jsonl(io.StringIO("\n".join(order)))
        out = io.StringIO()
        g.export_jsonl(out)
        outputs.append(out.getvalue())
        g.close()
    assert outputs[0] == outputs[1]


def test_an_import_makes_the_imported_text_searchable(graph):
    graph.import_jsonl(io.StringIO(REFERENCE_FILE))
    assert names(graph.search_nodes("tea")) == ["Alice"]
    assert names(graph.search_nodes("ikes t")) == ["Alice"]


# -- concurrency -------------------------------------------------------------------------
def test_eight_threads_creating_entities_at_once_lose_and_duplicate_nothing(graph):
    created_shared: list[str] = []
    errors = []
    lock = threading.Lock()

    def work(t):
        try:
            for i in range(500):
                result = graph.create_entities([ent(f"t{t}-{i}"), ent(f"shared-{i % 50}")])
                with lock:
                    created_shared.extend(e["name"] for e in result if e["name"].startswith("shared"))
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[0]
    assert sorted(created_shared) == sorted(f"shared-{i}" for i in range(50))
    entities, _, _ = all_pages(graph.read_graph, limit=1000)
    listed = [e["name"] for e in entities]
    assert len(listed) == len(set(listed)) == 4050
    assert graph.stats()["entities"] == 4050


def _process_writer(path, worker, start, count):
    try:
        g = KnowledgeGraph(path)
        start.wait(30)
        for i in range(count):
            g.create_entities([ent(f"p{worker}-{i}")])
            g.add_observations([{"entityName": "shared", "contents": [f"p{worker}-{i}"]}])
            g.create_relations([rel(f"p{worker}-{i}", "shared")])
        g.close()
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1)


def test_four_processes_writing_the_same_file_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.db")
    graph = KnowledgeGraph(path)
    graph.create_entities([ent("shared")])
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_process_writer, args=(path, w, start, 150)) for w in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert graph.stats() == {"entities": 601, "relations": 600, "observations": 600}
    assert len(graph.open_nodes(["shared"])["entities"][0]["observations"]) == 600
    graph.close()


def every_page(call, **kwargs):
    """Follow nextCursor to the end; return the pages (each checked against the ceiling)."""
    pages, cursor = [], None
    while True:
        page = call(cursor=cursor, **kwargs)
        assert len(json.dumps(page)) <= MAX_RESULT_CHARS
        pages.append(page)
        cursor = page.get("nextCursor")
        if cursor is None:
            return pages
        assert len(pages) < 1000


@pytest.mark.parametrize("reader", ["open_nodes", "search_nodes"])
def test_the_relations_a_page_omits_are_reached_by_following_its_cursor(graph, reader):
    graph.create_entities([ent("Hub", observations=["centre"]), ent("Other")])
    spokes = [rel("Hub", f"spoke-{i:05}-" + "z" * 200, "connects to") for i in range(1000)]
    graph.create_relations(spokes + [rel("Other", "Hub", "points at")])
    call = (lambda cursor: graph.open_nodes(["Hub", "Other"], cursor=cursor)) if reader == "open_nodes" else \
        (lambda cursor: graph.search_nodes("Hub", cursor=cursor))
    pages = every_page(call)
    first = pages[0]
    assert first["omittedRelations"] > 0 and first["nextCursor"]
    assert first["omittedRelations"] == 1001 - len(first["relations"])
    relations = [r for page in pages for r in page["relations"]]
    keys = {(r["from"], r["to"], r["relationType"]) for r in relations}
    assert keys >= {(r["from"], r["to"], r["relationType"]) for r in spokes + [rel("Other", "Hub", "points at")]}
    assert [e["name"] for page in pages for e in page["entities"]].count("Hub") == 1   # its one observation: shown once
    if reader == "open_nodes":
        assert "Other" in [e["name"] for page in pages for e in page["entities"]]


def test_every_observation_of_an_entity_too_big_for_a_page_is_reached_by_its_cursor(graph):
    observations = [f"{i} " + "x" * 5000 for i in range(100)]
    graph.create_entities([ent("Huge", observations=observations), ent("Next")])
    graph.create_relations([rel("Huge", "Next", "precedes")])
    for call in (lambda cursor: graph.open_nodes(["Huge"], cursor=cursor),
                 lambda cursor: graph.read_graph(cursor=cursor),
                 lambda cursor: graph.search_nodes("Huge", cursor=cursor)):
        pages = every_page(call)
        seen = [o for page in pages for e in page["entities"] if e["name"] == "Huge"
                for o in e["observations"] if not o.startswith("[memesh:")]
        assert seen == observations
        assert any(r["relationType"] == "precedes" for page in pages for r in page["relations"])
