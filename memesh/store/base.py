"""The storage interface: what the layers above the store use, whichever backend holds the data.

Two implementations exist: SQLite (:class:`memesh.store.graph.KnowledgeGraph`,
:class:`memesh.store.memory.MemoryStore`, :class:`memesh.store.a2a.SqliteA2AStore`, the
embedded default) and PostgreSQL (:mod:`memesh.store.pg`, a team's server). Both take and return the same plain data
(documented in those modules), page the same way and keep every result under the same
size ceiling; the shared test suite runs against both. Nothing above the store layer
knows which one is in use: :func:`memesh.store.storage.open_storage` picks it from the
``storage.url`` setting.
"""
from __future__ import annotations

import dataclasses
from typing import IO, Any, Iterable, Protocol, Sequence, runtime_checkable

Json = dict[str, Any]


@runtime_checkable
class GraphStore(Protocol):
    """The knowledge graph (reference-server semantics plus ranked search and paging)."""

    def create_entities(self, entities: list[Json]) -> list[Json]: ...
    def create_relations(self, relations: list[Json]) -> list[Json]: ...
    def add_observations(self, observations: list[Json]) -> list[Json]: ...
    def delete_entities(self, entityNames: list[str]) -> dict[str, int]: ...  # noqa: N803
    def delete_observations(self, deletions: list[Json]) -> dict[str, int]: ...
    def delete_relations(self, relations: list[Json]) -> dict[str, int]: ...
    def read_graph(self, limit: int | None = None, cursor: str | None = None) -> Json: ...
    def search_nodes(self, query: str, limit: int | None = None, cursor: str | None = None,
                     origin: Json | None = None) -> Json: ...
    def open_nodes(self, names: list[str], limit: int | None = None, cursor: str | None = None) -> Json: ...
    def stats(self) -> dict[str, int]: ...
    def export_jsonl(self, fp: IO[str]) -> dict[str, int]: ...
    def import_jsonl(self, fp: Iterable[str | bytes]) -> dict[str, int]: ...


@runtime_checkable
class MemoryBackend(Protocol):
    """Project-scoped memories (remember / recall / list / forget)."""

    def remember(self, content: str, *, tags: Sequence[str] | None = None, kind: str = "note",
                 importance: float | None = None, project: str = "") -> Json: ...
    def forget(self, ids: Sequence[int]) -> dict[str, int]: ...
    def recall(self, query: str = "", *, project: str = "", all_projects: bool = False,
               tags: Sequence[str] | None = None, kind: str | None = None, limit: int | None = None,
               cursor: str | None = None, origin: Json | None = None) -> Json: ...
    def list(self, *, project: str = "", all_projects: bool = False, tags: Sequence[str] | None = None,
             kind: str | None = None, limit: int | None = None, cursor: str | None = None,
             origin: Json | None = None) -> Json: ...
    def stats(self) -> Json: ...



@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """One A2A task as stored: the columns queries need beside the serialized task.

    ``task`` is the a2a-sdk ``Task`` as protobuf bytes (the store never decodes it);
    ``state`` is its ``TASK_STATE_*`` name; ``summary`` the text of its request; ``now``
    the time of this save (``created_at`` of a new task, ``updated_at`` always).
    """

    id: str
    context_id: str
    agent: str
    sender: str
    state: str
    summary: str
    task: bytes
    now: float


@runtime_checkable
class A2AStore(Protocol):
    """The A2A hub's tasks and agents, as seen by one hub (one daemon's home).

    A SQLite file belongs to one home; a PostgreSQL database is shared by many daemons,
    so there every row carries the hub's identity and each hub sees only its own
    (:func:`memesh.store.storage.hub_identity`). Task rows (``pending``, ``task_rows``,
    ``task_row``) are plain dicts: ``taskId, contextId, from, to, state`` (short name),
    ``text, createdAt, updatedAt``; agents: ``name, project, description, createdAt, lastSeen``.
    """

    def save_task(self, record: TaskRecord) -> None:
        """Insert or update a task in one transaction; a state change the task state machine
        forbids (:func:`memesh.a2a.states.may_save`) raises ``states.RefusedTransition`` and stores nothing."""
    def get_task(self, task_id: str) -> bytes | None: ...
    def delete_task(self, task_id: str) -> None: ...
    def list_tasks(self, *, agent: str = "", context_id: str = "", state: str = "",
                   updated_after: float | None = None, after: tuple[float, str] | None = None,
                   limit: int = 50) -> tuple[list[tuple[float, str, bytes]], int]:
        """``(created_at, id, task)`` newest first, strictly older than the cursor ``after``
        (``(created_at, id)``), and how many tasks match the filters (all pages)."""
    def pending(self, agent: str, limit: int = 20, offset: int = 0) -> tuple[list[Json], int]:
        """The tasks waiting for ``agent``'s answer, oldest first, and how many there are."""
    def task_rows(self, agent: str = "", state: str = "", limit: int = 50) -> list[Json]: ...
    def task_row(self, task_id: str) -> Json | None: ...
    def expired(self, before: float, limit: int = 100) -> list[tuple[str, str]]:
        """``(id, state)`` of unfinished tasks not updated since ``before``."""
    def delete_finished(self, before: float, limit: int = 500) -> int:
        """Delete up to ``limit`` tasks in a terminal state last updated before ``before``
        (oldest first; unfinished tasks are never touched); how many were deleted."""
    def agents(self) -> list[Json]: ...
    def agent_for_project(self, project: str) -> str | None: ...
    def save_agent(self, agent: Json) -> None:
        """Insert an agent or update its description and last_seen (its project stays the first one)."""
