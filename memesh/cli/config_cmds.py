"""``memesh config show``: every effective setting and where its value came from."""
from __future__ import annotations

import json

import argh

from memesh.config import SCHEMA, env_name, load_settings
from memesh.store.url import describe, parse_storage_url, redact


def _shown(key: str, value):
    """A value as it may be printed: a password inside the storage URL is hidden."""
    return redact(value) if key == "storage.url" else value


@argh.arg("--json", dest="as_json", help="print the settings as JSON")
def show(*, as_json: bool = False) -> None:
    """Print every effective setting with its source (default, file, env or flag)."""
    settings = load_settings()
    rows = [
        {"key": key, "value": _shown(key, settings.values[key]), "source": settings.sources[key], "env": env_name(key), "meaning": SCHEMA[key][2]}
        for key in SCHEMA
    ]
    storage = describe(parse_storage_url(settings["storage.url"]), str(settings.home / "memesh.db"))
    if as_json:
        print(json.dumps({"home": str(settings.home), "configFile": str(settings.config_file or ""), "storage": storage,
                          "settings": rows}, indent=2))
        return
    print(f"home         {settings.home}")
    print(f"config file  {settings.config_file or '(none)'}")
    print(f"storage      {storage}")
    width = max(len(r["key"]) for r in rows)
    for row in rows:
        print(f"{row['key']:<{width}}  {json.dumps(row['value']):<10}  {row['source']}")


COMMANDS = [show]
