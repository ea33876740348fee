"""The documented defaults file and the built-in defaults must never drift apart."""
import pathlib

import yaml

from memesh import config

DEFAULTS_FILE = pathlib.Path(__file__).resolve().parent.parent / "config" / "memesh.yaml"


def test_documented_defaults_file_lists_every_setting_with_its_built_in_value():
    documented = config.flatten(yaml.safe_load(DEFAULTS_FILE.read_text()), str(DEFAULTS_FILE))
    assert set(documented) == set(config.SCHEMA)
    for key, value in documented.items():
        assert config.SCHEMA[key][1](value) == config.DEFAULTS[key], key


def test_documented_defaults_file_loads_as_a_config_file_without_changing_anything(tmp_path):
    settings = config.load_settings({"MEMESH_HOME": str(tmp_path), "MEMESH_CONFIG": str(DEFAULTS_FILE)})
    assert dict(settings.values) == config.DEFAULTS
    assert all(source.startswith("file:") for source in settings.sources.values())
