"""Settings: one frozen object built once at each entry point and passed down.

Layers, lowest precedence first:

1. built-in defaults (``DEFAULTS`` below, mirrored in ``config/memesh.yaml``),
2. the YAML file (``$MEMESH_CONFIG``, else ``$MEMESH_HOME/config.yaml``),
3. ``MEMESH_*`` environment variables,
4. command-line flags.

Every setting ``section.key`` has the environment variable ``MEMESH_SECTION_KEY``
(``daemon.idle_timeout`` ↔ ``MEMESH_DAEMON_IDLE_TIMEOUT``). One historical exception:
``MEMESH_DISABLE_DAEMON=1`` sets ``daemon.enabled`` to false. Durations are in
milliseconds, as the daemon's documented variables have always been.

Nothing else in memesh reads ``os.environ`` for settings; the merge itself is the pure
function :func:`merge_layers`.
"""
from __future__ import annotations

import json
import os
import pathlib
import types
from collections.abc import Callable, Mapping

from memesh.errors import ConfigError
from memesh.paths import write_private

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the proxy's start-up path
if TYPE_CHECKING:
    from typing import Any

MiB = 1024 * 1024

LOG_LEVELS = ("debug", "info", "warn", "warning", "error")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true/false (or 1/0)")


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number from {low} to {high}")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ValueError(f"expected a whole number from {low} to {high}") from None
        if not low <= number <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return number

    return check


def _log_level(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in LOG_LEVELS:
        raise ValueError("expected one of debug, info, warn, error")
    return "warning" if text == "warn" else text


_DAY_MS = 24 * 3600 * 1000


def _storage_url(value: Any) -> str:
    from memesh.store.url import parse_storage_url  # pure, and cheap: urllib and re

    text = str(value).strip()
    try:
        parse_storage_url(text)
    except ValueError:
        raise ValueError("expected 'sqlite:', 'sqlite:/absolute/file.db' or 'postgresql://user@host/dbname'") from None
    return text


def _optional_path(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    if text and not text.startswith(("/", "~")):
        raise ValueError("expected an absolute path (or empty)")
    return text

#: key -> (default, validator, one-line meaning). The documented defaults file
#: config/memesh.yaml is checked against this table by the test suite.
SCHEMA: dict[str, tuple[Any, Callable[[Any], Any], str]] = {
    "daemon.enabled": (True, _bool, "run one shared daemon; false = every window standalone"),
    "daemon.idle_timeout": (300000, _int_range(0, 30 * _DAY_MS), "ms with no client before the daemon exits (0 = never)"),
    "daemon.log_level": ("info", _log_level, "daemon log level: debug, info, warn, error"),
    "daemon.auth_timeout": (10000, _int_range(50, 600000), "ms a new connection has to authenticate"),
    "daemon.health_timeout": (3000, _int_range(50, 600000), "ms one hello may take; silent for two of them in a row, a daemon is judged hung"),
    "daemon.ready_timeout": (10000, _int_range(100, 600000), "ms a client waits for a spawned daemon to become ready"),
    "daemon.heartbeat_interval": (5000, _int_range(50, 3600000), "ms between the calls a client promises; 3 missed = gone"),
    "daemon.drain_timeout": (30000, _int_range(0, 3600000), "ms a graceful stop waits for in-flight work"),
    "daemon.max_connections": (4096, _int_range(1, 65536), "connections served at once; more are refused (a few more are kept for the CLI)"),
    "daemon.message_timeout": (30000, _int_range(100, 3600000), "ms for the rest of a message to arrive once its header did"),
    "daemon.idle_connection_timeout": (60000, _int_range(0, 30 * _DAY_MS), "ms a silent connection that never said hello keeps its slot when slots are short (0 = forever)"),
    "daemon.max_message_bytes": (10 * MiB, _int_range(1024, 1024 * MiB), "largest message the daemon reads"),
    "daemon.auto_upgrade": (True, _bool, "a newer client asks an older compatible daemon to hand over"),
    "proxy.reconnect_budget": (30000, _int_range(100, 3600000), "ms a window's requests wait for a daemon before they are answered with an error"),
    "a2a.enabled": (True, _bool, "serve the A2A front door (HTTP, 127.0.0.1 only) from the daemon"),
    "a2a.port": (7733, _int_range(0, 65535), "A2A port; the next free one if taken; 0 = any free port"),
    "a2a.channel": (False, _bool, "push new A2A tasks into Claude Code windows as channel events"),
    "a2a.blocking_timeout": (60000, _int_range(100, 3600000), "ms a blocking SendMessage waits for the window's answer"),
    "a2a.task_ttl": (86400000, _int_range(1000, 30 * _DAY_MS), "ms an unanswered task waits before it fails"),
    "a2a.keep_finished": (7 * _DAY_MS, _int_range(0, 365 * _DAY_MS), "ms a finished task (completed, failed, canceled, rejected) is kept before the daemon deletes it (0 = forever)"),
    "storage.url": ("sqlite:", _storage_url, "where the graph, memories and A2A tasks live: sqlite: (MEMESH_HOME/memesh.db) or postgresql://..."),
    "storage.password_file": ("", _optional_path, "file holding the PostgreSQL password (else the URL, PGPASSWORD or ~/.pgpass)"),
}

DEFAULTS: dict[str, Any] = {key: spec[0] for key, spec in SCHEMA.items()}

SOURCE_DEFAULT = "default"


def env_name(key: str) -> str:
    """The environment variable for a setting key: ``daemon.idle_timeout`` → ``MEMESH_DAEMON_IDLE_TIMEOUT``."""
    return "MEMESH_" + key.replace(".", "_").upper()


def flatten(tree: Any, origin: str) -> dict[str, Any]:
    """Turn the nested YAML mapping into ``section.key`` pairs, rejecting unknown keys."""
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{origin}: expected a mapping of sections (e.g. 'daemon:'), got {type(tree).__name__}")
    flat: dict[str, Any] = {}
    for section, body in tree.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"{origin}: {section}: expected a mapping of settings")
        for key, value in body.items():
            name = f"{section}.{key}"
            if name not in SCHEMA:
                allowed = ", ".join(sorted(SCHEMA))
                raise ConfigError(f"{origin}: unknown setting {name!r}; known settings: {allowed}")
            flat[name] = value
    return flat


def env_layer(environ: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """Settings found in the environment, each with the variable it came from."""
    layer: dict[str, tuple[Any, str]] = {}
    disable = environ.get("MEMESH_DISABLE_DAEMON")
    if disable is not None and disable.strip() != "":
        try:
            layer["daemon.enabled"] = (not _bool(disable), "env:MEMESH_DISABLE_DAEMON")
        except ValueError:
            raise ConfigError(f"environment: MEMESH_DISABLE_DAEMON={disable!r}: expected 1/true or 0/false") from None
    for key in SCHEMA:
        name = env_name(key)
        if name in environ and environ[name].strip() != "":
            layer[key] = (environ[name], f"env:{name}")
    return layer


def merge_layers(*layers: Mapping[str, tuple[Any, str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge layers of ``key -> (raw value, source)``, later layers winning, and validate.

    Returns ``(values, sources)``. Pure: raises :class:`ConfigError` naming the source,
    the key and what is allowed when a value does not validate.
    """
    values = dict(DEFAULTS)
    sources = {key: SOURCE_DEFAULT for key in SCHEMA}
    for layer in layers:
        for key, (raw, source) in layer.items():
            if key not in SCHEMA:
                raise ConfigError(f"{source}: unknown setting {key!r}")
            try:
                values[key] = SCHEMA[key][1](raw)
            except ValueError as exc:
                raise ConfigError(f"{source}: {key}: {exc}, got {raw!r}") from None
            sources[key] = source
    return values, sources


class Settings:
    """The effective configuration of one process (read-only). Build with :func:`load_settings`.

    A plain class rather than a dataclass: it is built on the stdio proxy's start-up path,
    where importing that module costs several milliseconds.
    """

    __slots__ = ("home", "config_file", "values", "sources")

    def __init__(self, home: pathlib.Path, config_file: pathlib.Path | None, values: Mapping[str, Any], sources: Mapping[str, str]):
        for name, value in (("home", home), ("config_file", config_file), ("values", values), ("sources", sources)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Settings are read-only; build new ones with load_settings() or with_overrides()")

    def __repr__(self) -> str:
        return f"Settings(home={str(self.home)!r}, config_file={self.config_file!r})"

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def daemon_enabled(self) -> bool:
        return bool(self.values["daemon.enabled"])

    def seconds(self, key: str) -> float:
        """A millisecond setting in seconds."""
        return self.values[key] / 1000.0

    def with_overrides(self, **flags: Any) -> "Settings":
        """A copy with command-line flags applied (keys use ``__`` for the dot: ``daemon__log_level``)."""
        layer = {key.replace("__", "."): (value, "flag") for key, value in flags.items() if value is not None}
        current = {k: (v, self.sources[k]) for k, v in self.values.items()}
        values, sources = merge_layers(current, layer)
        return Settings(self.home, self.config_file, types.MappingProxyType(values), types.MappingProxyType(sources))


def default_home(environ: Mapping[str, str]) -> pathlib.Path:
    home = environ.get("MEMESH_HOME")
    if home:
        return pathlib.Path(home).expanduser().absolute()
    return pathlib.Path("~").expanduser() / ".memesh"


#: Beside the settings, in the home: the last YAML file read, as JSON (see read_config_file).
CONFIG_CACHE = "config.cache.json"


def read_config_file(path: pathlib.Path, cache: pathlib.Path | None = None) -> dict[str, Any]:
    """The settings in the YAML file at ``path``, as ``section.key`` pairs.

    Importing yaml costs ~30 ms, on every window of a user who has a config file. So the
    parsed file is kept in ``cache`` (JSON, which the window imports anyway) together
    with the file's identity (device, inode, size, modification and change times, in ns),
    and read from there while the file is unchanged. Only a parse that JSON gives back
    unchanged is kept; anything amiss with the cache just means parsing the file.
    """
    stamp = _file_stamp(path)
    tree = _cached_tree(cache, path, stamp)
    if tree is _MISSING:
        tree = _parse_yaml(path)
        _keep_tree(cache, path, stamp, tree)
    return flatten(tree, str(path))


_MISSING = object()


def _file_stamp(path: pathlib.Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _cached_tree(cache: pathlib.Path | None, path: pathlib.Path, stamp: list[int] | None) -> Any:
    if cache is None or stamp is None:
        return _MISSING
    try:
        fd = os.open(cache, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return _MISSING
    try:
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return _MISSING  # only a cache nobody else could have written stands for the file
            kept = json.loads(fh.read())
    except (OSError, ValueError):
        return _MISSING
    if not isinstance(kept, dict) or kept.get("file") != str(path) or kept.get("stamp") != stamp or "tree" not in kept:
        return _MISSING
    return kept["tree"]


def _keep_tree(cache: pathlib.Path | None, path: pathlib.Path, stamp: list[int] | None, tree: Any) -> None:
    if cache is None or stamp is None:
        return
    try:
        text = json.dumps({"file": str(path), "stamp": stamp, "tree": tree})
        if json.loads(text)["tree"] != tree:
            return  # e.g. integer keys, which JSON would turn into strings
        write_private(cache, text.encode())
    except (TypeError, ValueError, OSError):
        pass  # a value JSON cannot hold (a date), or a home we cannot write: parse next time


def _parse_yaml(path: pathlib.Path) -> Any:
    import yaml  # deferred: ~30 ms, and most users have no file (or a cached one)

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def load_settings(environ: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Build the settings for this process from defaults, file, environment and flags."""
    environ = os.environ if environ is None else environ
    home = default_home(environ)
    explicit = environ.get("MEMESH_CONFIG")
    config_file = pathlib.Path(explicit).expanduser() if explicit else home / "config.yaml"
    file_layer: dict[str, tuple[Any, str]] = {}
    if explicit and not config_file.is_file():
        raise ConfigError(f"MEMESH_CONFIG={explicit}: no such file")
    if config_file.is_file():
        file_layer = {k: (v, f"file:{config_file}") for k, v in read_config_file(config_file, home / CONFIG_CACHE).items()}
    else:
        config_file = None
    flag_layer = {key.replace("__", "."): (value, "flag") for key, value in flags.items() if value is not None}
    values, sources = merge_layers(file_layer, env_layer(environ), flag_layer)
    return Settings(
        home=home,
        config_file=config_file,
        values=types.MappingProxyType(values),
        sources=types.MappingProxyType(sources),
    )
