"""JSONL export/import round-trips any graph, including unicode and newlines in text."""
import io
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memesh.store.graph import KnowledgeGraph

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["line\nbreak", "tab\tand\r\n", "日本語", "🙂", '"quoted"', "\\", "\x00nul", "\u2028"])


@st.composite
def graphs(draw):
    names = draw(st.lists(text, unique=True, max_size=8))
    entities = [{"name": name, "entityType": draw(text),
                 "observations": draw(st.lists(text, unique=True, max_size=4))} for name in names]
    endpoint = st.sampled_from(names) | text if names else text  # some relations dangle
    relations = draw(st.lists(st.fixed_dictionaries({"from": endpoint, "to": endpoint, "relationType": text}),
                              max_size=8, unique_by=lambda r: (r["from"], r["to"], r["relationType"])))
    return entities, relations


def export(graph: KnowledgeGraph) -> str:
    out = io.StringIO()
    graph.export_jsonl(out)
    return out.getvalue()


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_export_of_an_import_is_the_original_graph(generated):
    entities, relations = generated
    with tempfile.TemporaryDirectory() as directory:
        original = KnowledgeGraph(Path(directory) / "a.db")
        original.create_entities(entities)
        original.create_relations(relations)
        exported = export(original)

        lines = [json.loads(line) for line in exported.splitlines()]
        assert [line for line in lines if line["type"] == "entity"] == sorted(
            ({"type": "entity", **e} for e in entities), key=lambda e: e["name"])
        assert [line for line in lines if line["type"] == "relation"] == sorted(
            ({"type": "relation", **r} for r in relations), key=lambda r: (r["from"], r["to"], r["relationType"]))

        copy = KnowledgeGraph(Path(directory) / "b.db")
        assert copy.import_jsonl(io.StringIO(exported)) == {"entities": len(entities), "relations": len(relations)}
        assert export(copy) == exported
        copied, first = copy.read_graph(limit=1000), original.read_graph(limit=1000)
        assert copied["entities"] == first["entities"]
        assert sorted(map(json.dumps, copied["relations"])) == sorted(map(json.dumps, first["relations"]))
        original.close()
        copy.close()
