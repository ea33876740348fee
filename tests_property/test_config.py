"""Properties of the settings merge (memesh.config): precedence, validation, env names.

Strategies are derived from ``SCHEMA`` itself: each validator is asked what it allows
(its error message names the range or the choices), so a new setting is covered as soon
as it is added.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import tempfile

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from memesh.config import (CONFIG_CACHE, DEFAULTS, SCHEMA, SOURCE_DEFAULT, env_layer, env_name, flatten, load_settings,
                           merge_layers, read_config_file)
from memesh.errors import ConfigError

KEYS = sorted(SCHEMA)


def _allowed(key: str) -> str:
    try:
        SCHEMA[key][1]("\u2603 not a value")
    except ValueError as exc:
        return str(exc)
    return ""


def kind_of(key: str):
    """("int", low, high) | ("bool",) | ("choice", names) | ("opaque",) from the validator's own words."""
    message = _allowed(key)
    if match := re.search(r"whole number from (\d+) to (\d+)", message):
        return ("int", int(match.group(1)), int(match.group(2)))
    if "true/false" in message:
        return ("bool",)
    if match := re.search(r"one of (.+)$", message):
        return ("choice", [name.strip() for name in match.group(1).split(",")])
    if "'postgresql://" in message:
        return ("storage_url",)
    if "absolute path" in message:
        return ("path",)
    return ("opaque",)


STORAGE_URLS = ["sqlite:", " sqlite: ", "sqlite:/x/y.db", "postgresql://u@h/db",
                "postgres://u:secret@h:5433/d?sslmode=require", "postgresql://u@/d?host=/run/postgresql"]


def valid_raw(key: str) -> st.SearchStrategy:
    kind = kind_of(key)
    if kind[0] == "int":
        number = st.integers(kind[1], kind[2])
        return number | number.map(str) | number.map(lambda n: f" {n} ")
    if kind[0] == "bool":
        return st.sampled_from([True, False, 1, 0, "1", "0", "true", "false", "TRUE", "yes", "no", "on", "off"])
    if kind[0] == "choice":
        return st.sampled_from(kind[1]).flatmap(lambda name: st.sampled_from([name, name.upper(), f" {name} "]))
    if kind[0] == "storage_url":
        return st.sampled_from(STORAGE_URLS)
    if kind[0] == "path":
        return st.sampled_from(["", "/etc/memesh/pw", "~/.memesh-pw"])
    return st.just(DEFAULTS[key])


def invalid_raw(key: str) -> st.SearchStrategy:
    kind = kind_of(key)
    if kind[0] == "int":
        return st.integers(max_value=kind[1] - 1) | st.integers(min_value=kind[2] + 1) | st.sampled_from(["", "soon", "1.5", "1e3", True, None])
    if kind[0] == "bool":
        return st.sampled_from(["maybe", "2", 2, -1, "enable", None])
    if kind[0] == "choice":
        return st.text(min_size=1).filter(lambda t: t.strip().lower() not in kind[1])
    if kind[0] == "storage_url":
        return st.sampled_from(["", "  ", "mysql://h/d", "sqlite:relative.db", "postgresql://h:port/d", "postgresql:/d"])
    if kind[0] == "path":
        return st.sampled_from(["relative/pw", "pw"])
    return st.nothing()


CHECKABLE = [key for key in KEYS if kind_of(key)[0] != "opaque"]


def layer(source: str) -> st.SearchStrategy:
    """A layer: some keys with valid raw values, all from ``source``."""
    return st.sets(st.sampled_from(KEYS)).flatmap(
        lambda keys: st.fixed_dictionaries({key: valid_raw(key).map(lambda raw: (raw, source)) for key in keys})
    )


def test_every_setting_says_what_it_allows():
    assert CHECKABLE == KEYS, f"settings whose validator does not name what is allowed: {sorted(set(KEYS) - set(CHECKABLE))}"


@given(layer("file:/x/config.yaml"), layer("env:MEMESH_X"), layer("flag"))
def test_each_value_and_its_source_come_from_the_highest_layer_that_sets_it(file, env, flag):
    values, sources = merge_layers(file, env, flag)
    for key in KEYS:
        setters = [lay[key] for lay in (file, env, flag) if key in lay]
        if setters:
            raw, source = setters[-1]
            assert values[key] == SCHEMA[key][1](raw)
            assert sources[key] == source
        else:
            assert values[key] == DEFAULTS[key] and sources[key] == SOURCE_DEFAULT


@given(layer("file:/x/config.yaml"), layer("env:MEMESH_X"))
def test_merging_is_deterministic_and_idempotent(file, env):
    values, sources = merge_layers(file, env)
    again = merge_layers({k: (v, sources[k]) for k, v in values.items()})
    assert again == (values, sources)


@given(st.sampled_from(CHECKABLE).flatmap(lambda key: st.tuples(st.just(key), invalid_raw(key))),
       st.sampled_from(["file:/home/u/.memesh/config.yaml", "env:MEMESH_SOMETHING", "flag"]),
       layer("env:MEMESH_Y"))
def test_an_invalid_value_raises_a_config_error_naming_source_key_and_what_is_allowed(bad, source, others):
    key, raw = bad
    with pytest.raises(ConfigError) as caught:
        merge_layers({key: (raw, source)}, others)
    message = str(caught.value)
    assert source in message and key in message
    assert _allowed(key) in message
    assert "\n" not in message


@given(st.sampled_from(KEYS))
def test_env_name_is_memesh_plus_the_key_in_upper_case_with_underscores(key):
    name = env_name(key)
    assert name == "MEMESH_" + key.replace(".", "_").upper()
    assert re.fullmatch(r"MEMESH_[A-Z0-9_]+", name)


def test_env_names_of_different_settings_never_collide():
    assert len({env_name(key) for key in KEYS}) == len(KEYS)


@given(st.sampled_from(KEYS).flatmap(lambda key: st.tuples(st.just(key), valid_raw(key).map(lambda raw: str(raw).strip()))))
def test_env_layer_maps_each_variable_back_to_its_setting(pair):
    key, text = pair
    if text == "":
        return
    assert env_layer({env_name(key): text, "UNRELATED": "1", "MEMESH_NOT_A_SETTING": "x"}) == {key: (text, f"env:{env_name(key)}")}


@given(st.sampled_from(["1", "true", "TRUE", "0", "false"]))
def test_disable_daemon_sets_daemon_enabled_to_its_negation(text):
    values, sources = merge_layers(env_layer({"MEMESH_DISABLE_DAEMON": text}))
    assert values["daemon.enabled"] is (text.lower() not in ("1", "true"))
    assert sources["daemon.enabled"] == "env:MEMESH_DISABLE_DAEMON"


@given(st.text(min_size=1).filter(lambda t: "." not in t), st.text(min_size=1))
def test_flatten_rejects_unknown_settings_naming_them(section, key):
    if f"{section}.{key}" in SCHEMA:
        return
    with pytest.raises(ConfigError, match="unknown setting"):
        flatten({section: {key: 1}}, "config.yaml")


def _file_value(raw):
    return raw.strip() if isinstance(raw, str) else raw


@settings(max_examples=40, deadline=None)
@given(layer("file"), layer("env"), layer("flag"))
def test_load_settings_applies_file_then_environment_then_flags(file, env, flag):
    home = tempfile.mkdtemp(prefix="mm", dir="/tmp")
    try:
        tree: dict = {}
        for key, (raw, _) in file.items():
            section, name = key.split(".")
            tree.setdefault(section, {})[name] = _file_value(raw)
        config = os.path.join(home, "config.yaml")
        with open(config, "w", encoding="utf-8") as fh:
            yaml.safe_dump(tree, fh)
        environ = {"MEMESH_HOME": home, **{env_name(key): str(raw) for key, (raw, _) in env.items() if str(raw).strip()}}
        flags = {key.replace(".", "__"): raw for key, (raw, _) in flag.items()}
        loaded = load_settings(environ, **flags)
        for key in KEYS:
            if key in flag:
                expected, source = flag[key][0], "flag"
            elif env_name(key) in environ:
                expected, source = environ[env_name(key)], f"env:{env_name(key)}"
            elif key in file:
                expected, source = _file_value(file[key][0]), f"file:{config}"
            else:
                expected, source = DEFAULTS[key], SOURCE_DEFAULT
            assert loaded.values[key] == SCHEMA[key][1](expected), key
            assert loaded.sources[key] == source, key
    finally:
        shutil.rmtree(home)


# Values of any kind YAML reads (flatten checks names, not values), including some JSON
# cannot hold (dates) or would change (integer keys).
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.dates(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.integers() | st.text(), children, max_size=3),
    max_leaves=6,
)
config_trees = st.dictionaries(st.sampled_from(KEYS), yaml_values).map(
    lambda flat: {section: {key.split(".")[1]: value for key, value in flat.items() if key.split(".")[0] == section}
                  for section in {key.split(".")[0] for key in flat}})


def _typed(flat: dict) -> list:
    """Compare values with their types (True == 1 and 1.0 == 1 in Python)."""
    def walk(value):
        if isinstance(value, dict):
            return ("dict", sorted((repr(k), walk(v)) for k, v in value.items()))
        if isinstance(value, list):
            return ("list", [walk(v) for v in value])
        return (type(value).__name__, repr(value))
    return sorted((key, walk(value)) for key, value in flat.items())


@settings(max_examples=60, deadline=None)
@given(config_trees)
def test_a_config_file_read_through_the_cache_gives_exactly_what_parsing_it_gives(tree):
    home = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    try:
        config, cache = home / "config.yaml", home / CONFIG_CACHE
        config.write_text(yaml.safe_dump(tree), encoding="utf-8")
        parsed = read_config_file(config)
        assert _typed(read_config_file(config, cache)) == _typed(parsed)  # parses, maybe keeps it
        assert _typed(read_config_file(config, cache)) == _typed(parsed)  # from the cache, if kept
    finally:
        shutil.rmtree(home)
