"""The agent's configuration: a TOML file (`kabinet-agent --config agent.toml`) and/or the environment.

Secrets (kabinet's agent token, the cluster administrator's password) are read from the environment or
from a file the configuration names (`token_file`, `admin_password_file`), never from the TOML file
itself: the file can then be shown, copied and versioned. The environment wins over the file.

```toml
[kabinet]
url = "http://kabinet:8000"
token_file = "/etc/kabinet-agent/token"         # or KABINET_AGENT_TOKEN

[cluster]
name = "main"                                   # the cluster as kabinet knows it (`kabinet cluster add main`)
time_zone = "Europe/Moscow"                     # the cluster server's clock: rac's started-at is local time
rac = "/opt/1cv8/x86_64/8.3.24.1467/rac"
ras = "localhost:1545"
# id = "1619820a-…"                             # rac's cluster UUID when ras serves several clusters
admin_user = "admin"                            # when the cluster has administrators
admin_password_file = "/etc/kabinet-agent/cluster-admin"   # or KABINET_CLUSTER_ADMIN_PASSWORD
poll_seconds = 5

[updates]
designer = "/opt/1cv8/x86_64/8.3.24.1467/1cv8"
server = "srv1c"                                # /S <server>\\<infobase>
templates = "/var/1c/templates"                 # <templates>/<configuration>/<version>/1cv8.cfu
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# environment variable → (section, key); each overrides the file
ENVIRONMENT = {
    "KABINET_AGENT_URL": ("kabinet", "url"),
    "KABINET_AGENT_TOKEN": ("kabinet", "token"),
    "KABINET_AGENT_CLUSTER": ("cluster", "name"),
    "KABINET_AGENT_TIME_ZONE": ("cluster", "time_zone"),
    "KABINET_AGENT_RAC": ("cluster", "rac"),
    "KABINET_AGENT_RAS": ("cluster", "ras"),
    "KABINET_AGENT_CLUSTER_ID": ("cluster", "id"),
    "KABINET_AGENT_RAC_ENCODING": ("cluster", "encoding"),
    "KABINET_AGENT_POLL_SECONDS": ("cluster", "poll_seconds"),
    "KABINET_CLUSTER_ADMIN_USER": ("cluster", "admin_user"),
    "KABINET_CLUSTER_ADMIN_PASSWORD": ("cluster", "admin_password"),
    "KABINET_AGENT_DESIGNER": ("updates", "designer"),
    "KABINET_AGENT_SERVER": ("updates", "server"),
    "KABINET_AGENT_TEMPLATES": ("updates", "templates"),
    "KABINET_AGENT_WORK_DIR": ("updates", "work_dir"),
}
SECRETS_IN_FILES = {("kabinet", "token"): "token_file", ("cluster", "admin_password"): "admin_password_file"}


class ConfigError(Exception):
    """The configuration is incomplete or wrong: the message names the setting and the fix."""


@dataclass
class AgentConfig:
    url: str
    token: str = field(repr=False)
    cluster: str
    time_zone: ZoneInfo
    rac: str
    ras: str | None = None
    cluster_id: str | None = None
    encoding: str = "auto"
    admin_user: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    poll_seconds: float = 5.0
    max_backoff_seconds: float = 60.0
    designer: str | None = None
    server: str | None = None
    templates: Path | None = None
    work_dir: Path | None = None


def _read_secret(path: str, setting: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"{setting}: cannot read {path} ({error.strerror})") from None


def load(path: str | Path | None = None, environ: dict[str, str] | None = None) -> AgentConfig:
    """The configuration from the TOML file (if any) with the environment over it."""
    environ = dict(os.environ if environ is None else environ)
    data: dict[str, dict[str, Any]] = {"kabinet": {}, "cluster": {}, "updates": {}}
    if path:
        try:
            with open(path, "rb") as handle:
                loaded = tomllib.load(handle)
        except OSError as error:
            raise ConfigError(f"--config {path}: cannot read it ({error.strerror})") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"--config {path}: not TOML: {error}") from None
        for section, values in loaded.items():
            if section not in data or not isinstance(values, dict):
                raise ConfigError(f"{path}: unknown section [{section}] (there are [kabinet], [cluster], [updates])")
            data[section].update(values)
    for (section, key), file_setting in SECRETS_IN_FILES.items():
        if key in data[section]:
            raise ConfigError(f"[{section}] {key}: a secret does not belong in the settings file; put it in a file "
                              f"of its own ({file_setting} = \"…\") or in the environment")
        if data[section].get(file_setting):
            data[section][key] = _read_secret(data[section][file_setting], f"[{section}] {file_setting}")
    for variable, (section, key) in ENVIRONMENT.items():
        if environ.get(variable):
            data[section][key] = environ[variable]

    kabinet, cluster, updates = data["kabinet"], data["cluster"], data["updates"]
    missing = [f"[{s}] {k} ({v})" for v, (s, k) in ENVIRONMENT.items()
               if (s, k) in {("kabinet", "url"), ("kabinet", "token"), ("cluster", "name"), ("cluster", "time_zone"),
                             ("cluster", "rac")} and not data[s].get(k)]
    if missing:
        raise ConfigError("not set: " + ", ".join(missing))
    try:
        zone = ZoneInfo(str(cluster["time_zone"]))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[cluster] time_zone: {cluster['time_zone']!r} is not a time zone (e.g. Europe/Moscow)") from None
    try:
        poll = float(cluster.get("poll_seconds", 5))
    except (TypeError, ValueError):
        raise ConfigError("[cluster] poll_seconds: a number of seconds") from None
    if not 0.05 <= poll <= 3600:
        raise ConfigError("[cluster] poll_seconds: from 0.05 to 3600")
    if cluster.get("encoding", "auto") not in ("auto", "utf-8", "cp866"):
        raise ConfigError("[cluster] encoding: auto, utf-8 or cp866")
    return AgentConfig(
        url=str(kabinet["url"]).rstrip("/"), token=str(kabinet["token"]), cluster=str(cluster["name"]),
        time_zone=zone, rac=str(cluster["rac"]), ras=cluster.get("ras") or None, cluster_id=cluster.get("id") or None,
        encoding=cluster.get("encoding", "auto"), admin_user=cluster.get("admin_user") or None,
        admin_password=cluster.get("admin_password"), poll_seconds=poll,
        max_backoff_seconds=max(poll, float(cluster.get("max_backoff_seconds", 60))),
        designer=updates.get("designer"), server=updates.get("server"),
        templates=Path(updates["templates"]) if updates.get("templates") else None,
        work_dir=Path(updates["work_dir"]) if updates.get("work_dir") else None,
    )
