"""``memesh config show``: every effective setting and where its value came from."""
from __future__ import annotations

import json

import argh

from memesh.config import SCHEMA, env_name, load_settings


@argh.arg("--json", dest="as_json", help="print the settings as JSON")
def show(*, as_json: bool = False) -> None:
    """Print every effective setting with its source (default, file, env or flag)."""
    settings = load_settings()
    rows = [
        {"key": key, "value": settings.values[key], "source": settings.sources[key], "env": env_name(key), "meaning": SCHEMA[key][2]}
        for key in SCHEMA
    ]
    if as_json:
        print(json.dumps({"home": str(settings.home), "configFile": str(settings.config_file or ""), "settings": rows}, indent=2))
        return
    print(f"home         {settings.home}")
    print(f"config file  {settings.config_file or '(none)'}")
    width = max(len(r["key"]) for r in rows)
    for row in rows:
        print(f"{row['key']:<{width}}  {json.dumps(row['value']):<10}  {row['source']}")


COMMANDS = [show]
