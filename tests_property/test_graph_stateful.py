"""KnowledgeGraph against an in-memory model of the reference server's semantics.

The model is a dict of entities and a set of relations, changed the way the reference
server changes its JSONL file (plus memesh's documented choices: duplicates inside a call
are dropped, first wins). After every step the whole graph, read page by page, must equal
the model.
"""
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from memesh.errors import NotFound
from memesh.store.storage import open_storage

NAMES = st.sampled_from(["A", "b", "Ärger", "日本", "x y", '"q"', "*", "", "NEAR(", "-z"])
TEXTS = st.sampled_from(["one", "two", "Two", "line\nbreak", "ünïcode 🙂", "", "a\"b", "*?["])
TYPES = st.sampled_from(["person", "thing", ""])
RELATION_TYPES = st.sampled_from(["knows", "owns"])

entity_st = st.fixed_dictionaries({"name": NAMES, "entityType": TYPES,
                                   "observations": st.lists(TEXTS, max_size=4)})
relation_st = st.fixed_dictionaries({"from": NAMES, "to": NAMES, "relationType": RELATION_TYPES})


class GraphMachine(RuleBasedStateMachine):
    storage_url = "sqlite:"  # a subclass runs the same machine on PostgreSQL
    pg_server = None

    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp()
        self.url = self.pg_server.create_database() if self.pg_server else self.storage_url
        self.storage = open_storage(self.url, Path(self.directory) / "graph.db")
        self.graph = self.storage.graph
        self.entities: dict[str, tuple[str, list[str]]] = {}
        self.relations: set[tuple[str, str, str]] = set()

    def teardown(self):
        self.storage.close()
        if self.pg_server:
            self.pg_server.drop_database(self.url)
        shutil.rmtree(self.directory, ignore_errors=True)

    @rule(batch=st.lists(entity_st, max_size=4))
    def create_entities(self, batch):
        expected = []
        for e in batch:
            if e["name"] not in self.entities:
                observations = list(dict.fromkeys(e["observations"]))
                self.entities[e["name"]] = (e["entityType"], observations)
                expected.append({**e, "observations": observations})
        assert self.graph.create_entities(batch) == expected

    @rule(batch=st.lists(relation_st, max_size=4))
    def create_relations(self, batch):
        expected = []
        for r in batch:
            key = (r["from"], r["to"], r["relationType"])
            if key not in self.relations:
                self.relations.add(key)
                expected.append(r)
        assert self.graph.create_relations(batch) == expected

    @rule(items=st.lists(st.fixed_dictionaries({"entityName": NAMES, "contents": st.lists(TEXTS, max_size=3)}),
                         min_size=1, max_size=3))
    def add_observations(self, items):
        if any(item["entityName"] not in self.entities for item in items):
            try:
                self.graph.add_observations(items)
            except NotFound:
                return
            raise AssertionError("add_observations to an unknown entity did not raise NotFound")
        expected = []
        for item in items:
            observations = self.entities[item["entityName"]][1]
            added = [text for text in dict.fromkeys(item["contents"]) if text not in observations]
            observations.extend(added)
            expected.append({"entityName": item["entityName"], "addedObservations": added})
        assert self.graph.add_observations(items) == expected

    @rule(names=st.lists(NAMES, max_size=3))
    def delete_entities(self, names):
        deleted = sum(name in self.entities for name in set(names))
        for name in names:
            self.entities.pop(name, None)
        self.relations = {r for r in self.relations if r[0] not in names and r[1] not in names}
        assert self.graph.delete_entities(names) == {"deleted": deleted}

    @rule(items=st.lists(st.fixed_dictionaries({"entityName": NAMES, "observations": st.lists(TEXTS, max_size=3)}),
                         max_size=3))
    def delete_observations(self, items):
        deleted = 0
        for item in items:
            if item["entityName"] in self.entities:
                entity_type, observations = self.entities[item["entityName"]]
                kept = [text for text in observations if text not in item["observations"]]
                deleted += len(observations) - len(kept)
                self.entities[item["entityName"]] = (entity_type, kept)
        assert self.graph.delete_observations(items) == {"deleted": deleted}

    @rule(batch=st.lists(relation_st, max_size=3))
    def delete_relations(self, batch):
        doomed = {(r["from"], r["to"], r["relationType"]) for r in batch} & self.relations
        self.relations -= doomed
        assert self.graph.delete_relations(batch) == {"deleted": len(doomed)}

    @rule(name=NAMES)
    def open_node(self, name):
        result = self.graph.open_nodes([name])
        if name in self.entities:
            entity_type, observations = self.entities[name]
            assert result["entities"] == [{"name": name, "entityType": entity_type, "observations": observations}]
        else:
            assert result["entities"] == []
        touching = {r for r in self.relations if name in self.entities and name in r[:2]}
        assert {(r["from"], r["to"], r["relationType"]) for r in result["relations"]} == touching

    @invariant()
    def whole_graph_matches_the_model(self):
        entities, relations, cursor = [], [], None
        while True:
            page = self.graph.read_graph(limit=3, cursor=cursor)
            entities += page["entities"]
            relations += page["relations"]
            cursor = page.get("nextCursor")
            if cursor is None:
                break
        assert {e["name"]: (e["entityType"], e["observations"]) for e in entities} == self.entities
        assert len(entities) == len(self.entities)
        assert {(r["from"], r["to"], r["relationType"]) for r in relations} == self.relations
        assert len(relations) == len(self.relations)
        assert self.graph.stats()["entities"] == len(self.entities)


SETTINGS = settings(max_examples=50, stateful_step_count=30, deadline=None)
GraphMachine.TestCase.settings = SETTINGS
TestGraphMatchesReferenceModel = GraphMachine.TestCase


def test_the_postgresql_graph_matches_the_reference_model(pg_server):
    machine = type("PgGraphMachine", (GraphMachine,), {"pg_server": pg_server})
    run_state_machine_as_test(machine, settings=SETTINGS)
