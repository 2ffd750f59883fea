"""The tests' hand on a stand-in cluster: make one, start and end sessions in it, read what rac was told."""

from __future__ import annotations

import datetime as dt
import json
import uuid as uuids
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.standins.state import locked

HERE = Path(__file__).resolve().parent
RAC, DESIGNER = HERE / "rac", HERE / "1cv8"
MOSCOW = ZoneInfo("Europe/Moscow")


class StandinCluster:
    """A cluster's state file and command log in `folder`; `environment()` points the stand-ins at them."""

    def __init__(self, folder: Path, *, admin: tuple[str, str] | None = None, encoding: str = "utf-8",
                 zone: ZoneInfo = MOSCOW) -> None:
        self.folder, self.encoding, self.zone = folder, encoding, zone
        self.state, self.log = folder / "cluster.json", folder / "commands.log"
        self.uuid = str(uuids.uuid4())
        self.state.write_text(json.dumps({
            "down": False, "cluster": {"uuid": self.uuid, "name": "Локальный кластер", "host": "srv1c", "port": 1541},
            "admin": {"user": admin[0], "password": admin[1]} if admin else None,
            "infobases": [], "sessions": [], "refuse_terminate": [], "designer_failure": None, "next_session_id": 1,
        }, ensure_ascii=False), encoding="utf-8")
        self.log.touch()

    def environment(self) -> dict[str, str]:
        return {"STANDIN_CLUSTER_STATE": str(self.state), "STANDIN_COMMAND_LOG": str(self.log),
                "STANDIN_RAC_ENCODING": self.encoding}

    def add_infobase(self, name: str, *, user: str | None = None, password: str | None = None,
                     configuration: str | None = None, version: str | None = None) -> str:
        infobase = str(uuids.uuid4())
        with locked(self.state) as state:
            state["infobases"].append({
                "uuid": infobase, "name": name, "descr": f"База {name}", "user": user, "password": password,
                "configuration": configuration, "version": version, "sessions_deny": "off", "scheduled_jobs_deny": "off",
                "denied_message": "", "permission_code": "", "pending": None,
            })
        return infobase

    def start_session(self, infobase: str, user_name: str = "Бухгалтер", *, host: str = "PC-BUH-01",
                      app_id: str = "1CV8C", started_at: dt.datetime | None = None) -> str:
        """A session in the cluster (by infobase name); its rac `session` UUID. `started_at` in the
        cluster's local time as rac prints it."""
        session = str(uuids.uuid4())
        started = (started_at or dt.datetime.now(self.zone)).astimezone(self.zone).replace(microsecond=0, tzinfo=None)
        with locked(self.state) as state:
            base = next(i for i in state["infobases"] if i["name"] == infobase)
            state["sessions"].append({
                "session": session, "session_id": state["next_session_id"], "infobase": base["uuid"],
                "user_name": user_name, "host": host, "app_id": app_id, "started_at": started.isoformat(),
            })
            state["next_session_id"] += 1
        return session

    def end_session(self, session: str) -> None:
        with locked(self.state) as state:
            state["sessions"] = [s for s in state["sessions"] if s["session"] != session]

    def set(self, **fields) -> None:
        """Top-level fields of the state: down=True, designer_failure="…", refuse_terminate=[…]."""
        with locked(self.state) as state:
            state.update(fields)

    def read(self) -> dict:
        with locked(self.state, write=False) as state:
            return state

    def infobase(self, name: str) -> dict:
        return next(i for i in self.read()["infobases"] if i["name"] == name)

    def session_ids(self) -> set[str]:
        return {s["session"] for s in self.read()["sessions"]}

    def commands(self, program: str = "rac") -> list[list[str]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [entry["argv"] for entry in map(json.loads, lines) if entry["program"] == program]

    def calls(self, *words: str, program: str = "rac") -> list[list[str]]:
        """The calls whose words (mode and command) are these, in order."""
        return [argv for argv in self.commands(program) if [a for a in argv if not a.startswith("-") and ":" not in a][:len(words)] == list(words)]


def update_template(templates: Path, configuration: str, version: str, from_versions: list[str]) -> Path:
    """A stand-in update file where the agent looks for it: <templates>/<configuration>/<version>/1cv8.cfu."""
    folder = templates / configuration / version
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "1cv8.cfu"
    template.write_text(json.dumps({"configuration": configuration, "version": version, "from": from_versions}), encoding="utf-8")
    return template
