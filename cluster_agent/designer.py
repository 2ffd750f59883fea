"""The 1C designer in batch mode (`1cv8 DESIGNER …`): install a configuration update, read the version back.

An update is two designer runs, each a step boundary the customer sees: `/UpdateCfg <template>` (the
vendor's update onto the configuration) and `/UpdateDBCfg -Server` (the database restructured to it).
The designer writes messages to the `/Out` log, not percentages: after each run the agent reports the
log's last line; on failure the log's lines are the reason. The installed version is read back with
`/DumpConfigToFiles <dir> -listFile <file>` naming `Configuration` → `Configuration.xml` `<Version>`.

The infobase user's password and the lock's permission code go on the designer's command line only
(there is no other way to hand them over): never into a log line or an error text here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from cluster_agent.rac import scrub

log = logging.getLogger("cluster_agent.designer")

Report = Callable[[int, str], Awaitable[object]]
MAX_REASON_CHARS = 1500  # what kabinet keeps of a failure's reason; the log's last lines say the most
VERSION = re.compile(r"<Version>\s*([^<\s]+)\s*</Version>")


class DesignerError(Exception):
    """The designer failed: the message is its log's words (credentials scrubbed)."""


def read_log(path: Path) -> list[str]:
    """The /Out log's non-empty lines (UTF-8 with or without BOM; older builds write Windows-1251)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1251", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def template_for(templates: Path, configuration: str, version: str) -> Path:
    """The vendor's update template of that release: `<templates>/<configuration>/<version>/1cv8.cfu`
    (or a whole `1cv8.cf`)."""
    for part in (configuration, version):  # the release's names (kabinet's data): never a way out of the folder
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise DesignerError(f"недопустимое имя в пути шаблона обновления: {part!r}")
    folder = templates / configuration / version
    if not folder.resolve().is_relative_to(templates.resolve()):
        raise DesignerError(f"шаблон обновления вне папки шаблонов: {folder}")
    for name in ("1cv8.cfu", "1cv8.cf"):
        if (folder / name).is_file():
            return folder / name
    raise DesignerError(f"нет файла обновления {configuration} {version}: ожидался {folder / '1cv8.cfu'}")


class Designer:
    """`1cv8 DESIGNER /S <server>\\<infobase> /N <login> /P <password> …` for one cluster's infobases."""

    def __init__(self, executable: str, server: str, *, work_dir: Path | None = None, timeout: float = 4 * 3600) -> None:
        self.executable, self.server, self.timeout = executable, server, timeout
        self.work_dir = work_dir

    async def run(self, infobase: str, login: str | None, password: str | None, permission_code: str,
                  *action: str) -> list[str]:
        """One designer run; the /Out log's lines, or DesignerError with them."""
        with tempfile.TemporaryDirectory(prefix="kabinet-agent-", dir=self.work_dir) as folder:
            out = Path(folder) / "designer.log"
            command = [self.executable, "DESIGNER", "/S", f"{self.server}\\{infobase}"]
            if login:
                command += ["/N", login, "/P", password or ""]
            if permission_code:
                command += ["/UC", permission_code]
            command += ["/DisableStartupDialogs", "/DisableStartupMessages", "/Out", str(out), *action]
            secrets = [password, permission_code]
            try:
                process = await asyncio.create_subprocess_exec(
                    *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
            except OSError as error:
                raise DesignerError(f"конфигуратор не запускается ({self.executable}): {error.strerror}") from None
            try:
                printed, _ = await asyncio.wait_for(process.communicate(), timeout=self.timeout)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
                raise DesignerError(f"конфигуратор не закончил {action[0]} за {self.timeout / 60:.0f} мин") from None
            lines = [scrub(line, secrets) for line in read_log(out)]
            if process.returncode != 0:
                said = lines or [scrub(line, secrets) for line in printed.decode(errors="replace").splitlines() if line.strip()]
                reason = " ".join(said)[-MAX_REASON_CHARS:] or f"код выхода {process.returncode}"
                raise DesignerError(f"{action[0]}: {reason}")
            return lines

    async def update(self, infobase: str, login: str | None, password: str | None, permission_code: str,
                     template: Path, report: Report, progress: Sequence[int] = (50, 85)) -> None:
        """/UpdateCfg then /UpdateDBCfg, the log's last message reported after each."""
        lines = await self.run(infobase, login, password, permission_code, "/UpdateCfg", str(template))
        await report(progress[0], last_message(lines, "Обновление конфигурации загружено."))
        lines = await self.run(infobase, login, password, permission_code, "/UpdateDBCfg", "-Server")
        await report(progress[1], last_message(lines, "Конфигурация базы данных обновлена."))

    async def version(self, infobase: str, login: str | None, password: str | None, permission_code: str) -> str:
        """The configuration's version as installed: Configuration.xml of a partial dump."""
        with tempfile.TemporaryDirectory(prefix="kabinet-agent-dump-", dir=self.work_dir) as folder:
            dump, listing = Path(folder) / "dump", Path(folder) / "list.txt"
            dump.mkdir()
            listing.write_text("Configuration\n", encoding="utf-8")
            await self.run(infobase, login, password, permission_code,
                           "/DumpConfigToFiles", str(dump), "-listFile", str(listing))
            try:
                found = VERSION.search((dump / "Configuration.xml").read_text(encoding="utf-8-sig"))
            except FileNotFoundError:
                found = None
            if not found:
                raise DesignerError("версия конфигурации не прочитана: в выгрузке нет Configuration.xml с <Version>")
            return found.group(1)


def last_message(lines: list[str], default: str) -> str:
    return (lines[-1] if lines else default)[:500]

