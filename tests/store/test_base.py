"""Both storage backends implement the storage interface (memesh.store.base) with the same signatures."""
from __future__ import annotations

import inspect

import pytest

from memesh.store.base import GraphStore, MemoryBackend
from memesh.store.graph import KnowledgeGraph
from memesh.store.memory import MemoryStore
from memesh.store.pg.graph import PgKnowledgeGraph
from memesh.store.pg.memory import PgMemoryStore


def interface_methods(protocol):
    return [name for name in protocol.__dict__ if not name.startswith("_") and callable(getattr(protocol, name))]


def shape(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("protocol, implementations", [(GraphStore, (KnowledgeGraph, PgKnowledgeGraph)),
                                                       (MemoryBackend, (MemoryStore, PgMemoryStore))])
def test_each_backend_offers_every_method_of_the_interface_with_its_parameters(protocol, implementations):
    methods = interface_methods(protocol)
    assert len(methods) >= 5
    for name in methods:
        for implementation in implementations:
            assert shape(getattr(implementation, name)) == shape(getattr(protocol, name)), (implementation, name)
