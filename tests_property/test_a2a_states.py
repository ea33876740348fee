"""The A2A task state machine: the pure rules against a model written independently, and
the real task store (the SDK adapter over each storage backend, SQLite and PostgreSQL)
driven through random save sequences: terminal states are final and only allowed
transitions are ever stored."""
from __future__ import annotations

import pathlib
import shutil
import tempfile
import uuid

from a2a.types.a2a_pb2 import Task, TaskState, TaskStatus
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from memesh.a2a import states
from memesh.a2a.taskstore import HubTaskStore, IllegalTransition
from memesh.store.storage import open_storage

ALL = list(states.STATES)


def model_allows(current: str, new: str) -> bool:
    """The rules as the A2A spec words them, written without looking at states.ALLOWED."""
    finished = {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"}
    waiting = {"TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"}
    if current in finished:
        return False                      # a finished task never changes
    if new in finished:
        return True                       # anything unfinished may finish
    if new == "TASK_STATE_SUBMITTED":
        return current == new             # nothing goes back to submitted
    if new == "TASK_STATE_WORKING":
        return True                       # work starts or resumes
    return current == new or current not in waiting   # waiting states follow work, not each other


@given(st.sampled_from(ALL), st.sampled_from(ALL))
def test_can_move_agrees_with_the_model_for_every_pair(current, new):
    assert states.can_move(current, new) == model_allows(current, new)


@given(st.sampled_from(ALL))
def test_terminal_states_are_final_and_short_names_round_trip(state):
    if states.is_terminal(state):
        assert not any(states.can_move(state, other) for other in ALL)
    assert states.from_short(states.short_name(state)) == state


@given(st.text(max_size=30))
def test_unknown_state_names_are_refused_with_a_value_error(name):
    if name.strip().upper().replace("-", "_").removeprefix("TASK_STATE_") not in {s.removeprefix("TASK_STATE_") for s in ALL}:
        try:
            states.from_short(name)
        except ValueError:
            return
        raise AssertionError(f"{name!r} was accepted")


class StoredTaskMachine(RuleBasedStateMachine):
    """Random saves of a few tasks into the real store; the model says which must fail.

    ``url`` names the backend: ``sqlite:`` (a fresh file per run) or a PostgreSQL database
    (a fresh hub per run, so runs never see each other's tasks).
    """

    url = "sqlite:"

    def __init__(self) -> None:
        super().__init__()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
        self.storage = open_storage(self.url, self.dir / "memesh.db", hub=f"tester@host:/run/{uuid.uuid4().hex}")
        self.store = HubTaskStore(self.storage.a2a)
        self.model: dict[str, str] = {}

    @rule(task=st.sampled_from(["t1", "t2", "t3"]), state=st.sampled_from(ALL))
    def save(self, task, state):
        stored = self.model.get(task)
        proto = Task(id=task, context_id="c", status=TaskStatus(state=TaskState.Value(state)))
        proto.metadata.update({"agent": "a", "from": "b"})
        allowed = stored is None or stored == state or model_allows(stored, state)
        try:
            self.store.save_sync(proto)
        except IllegalTransition:
            assert not allowed, (stored, state)
            return
        assert allowed, (stored, state)
        self.model[task] = state

    @precondition(lambda self: self.model)
    @rule()
    def reload(self):
        for task, state in self.model.items():
            assert TaskState.Name(self.store.get_sync(task).status.state) == state

    @invariant()
    def inbox_holds_exactly_the_pending_tasks(self):
        pending = {t["taskId"] for t in self.storage.a2a.pending("a", 100)[0]}
        assert pending == {t for t, s in self.model.items() if s in states.PENDING}

    def teardown(self) -> None:
        self.storage.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_the_store_keeps_terminal_states_final_and_stores_only_allowed_transitions(backend):
    url = backend if backend.startswith("postgresql") else "sqlite:"
    machine = type("Machine", (StoredTaskMachine,), {"url": url})
    run_state_machine_as_test(machine, settings=settings(max_examples=40, stateful_step_count=25, deadline=None))
