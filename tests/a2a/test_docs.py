"""docs/a2a.md: its SDK snippet works as written against a real daemon and window."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import threading

from tests.a2a.conftest import inbox, structured
from tests.support import wait_until

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "a2a.md"


def test_the_outside_agent_snippet_in_the_docs_asks_a_window_and_prints_its_answer(hub, tmp_path):
    snippet = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    script = tmp_path / "ask.py"
    script.write_text(snippet)
    window = hub.window("backend")
    hub.record()

    def answer() -> None:
        page = wait_until(lambda: (p := inbox(window)) and p["tasks"] and p, 30, "the task")
        structured(window.call("a2a_reply", {"task_id": page["tasks"][0]["taskId"], "text": "It returns ok: true"}))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    done = subprocess.run([sys.executable, str(script), "backend", "What does /health return?"], env=hub.home.env,
                          capture_output=True, text=True, timeout=120)
    thread.join(30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["TASK_STATE_COMPLETED", "It returns ok: true"]


def test_the_hook_settings_snippet_names_the_real_command():
    text = DOC.read_text()
    assert '"command": "memesh hook prompt"' in text and "UserPromptSubmit" in text
