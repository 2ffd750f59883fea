"""`rac`, 1C's remote administration client (it talks to the cluster's `ras` service): run it, read its answer.

rac prints one block per object, blocks separated by an empty line, each line `key : value` with the
key padded by spaces (`session                          : 1b9a…`). Windows builds print in cp866
with CRLF line ends, Linux builds in UTF-8. A value with spaces is quoted (`name : "Локальный
кластер"`), an empty one is nothing or `''`. A failure is a non-zero exit with the reason on stderr.

Credentials (the cluster administrator's, an infobase user's) go to rac as options only: they never
appear in a log line or an error text of this module (`RacError` scrubs them out of rac's own words).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

log = logging.getLogger("cluster_agent.rac")

Block = dict[str, str]
# What rac says when the object asked for is no longer there (a session that ended on its own):
# "Сеанс с указанным идентификатором не найден" on Russian builds, "… not found" on English ones.
GONE_MARKERS = ("не найден", "not found")
# What rac says when it cannot reach ras or ras the cluster: nothing was refused, try again later.
UNREACHABLE_MARKERS = ("ошибка соединения", "connection refused", "не удалось установить соединение",
                       "could not connect", "connection error", "timed out", "network")
MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # 20,000 sessions of ~2 KiB each fit with room to spare


MAX_ERROR_BYTES = 64 * 1024


class OutputTooLarge(Exception):
    pass


async def discard(stream: asyncio.StreamReader) -> None:
    """Read a pipe to its end, keeping nothing."""
    while await stream.read(65536):
        pass


async def bounded_read(stream: asyncio.StreamReader, limit: int) -> bytes:
    """All of a pipe up to `limit` bytes; OutputTooLarge past it (read no further)."""
    chunks, size = [], 0
    while chunk := await stream.read(65536):
        size += len(chunk)
        if size > limit:
            raise OutputTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class RacError(Exception):
    """rac failed: `message` is rac's own reason (credentials scrubbed), `kind` what it means to the agent:
    `gone` (the object is not there: a session already ended), `unreachable` (ras or the cluster is down:
    retry later) or `refused` (the cluster said no)."""

    def __init__(self, message: str, kind: str = "refused") -> None:
        super().__init__(message)
        self.message, self.kind = message, kind

    @property
    def gone(self) -> bool:
        return self.kind == "gone"

    @property
    def unreachable(self) -> bool:
        return self.kind == "unreachable"


def classify(message: str) -> str:
    lowered = message.lower()
    if any(marker in lowered for marker in GONE_MARKERS):
        return "gone"
    if any(marker in lowered for marker in UNREACHABLE_MARKERS):
        return "unreachable"
    return "refused"


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced by `***` (rac may echo an option back in its error)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def decode(raw: bytes, encoding: str = "auto") -> str:
    """rac's bytes as text: UTF-8 (Linux builds) unless it does not decode, then cp866 (Windows builds)."""
    if encoding != "auto":
        return raw.decode(encoding, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp866", errors="replace")


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].replace('""', '"')
    return value


def parse_blocks(output: str | bytes, encoding: str = "auto") -> list[Block]:
    """rac's output as one dict per object, in rac's order; a line without ` : ` is not a field (skipped)."""
    text = decode(output, encoding) if isinstance(output, bytes) else output
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[Block] = []
    current: Block = {}
    for line in text.split("\n"):
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, separator, value = line.partition(":")
        if not separator or not key.strip() or " " in key.strip():
            continue
        current[key.strip()] = unquote(value)
    if current:
        blocks.append(current)
    return blocks


def local_time(value: str, zone: ZoneInfo) -> dt.datetime | None:
    """rac's `started-at` (`2026-02-26T04:12:48`, the cluster server's local time) as an aware time; an
    empty or zero date (`0001-01-01T00:00:00`, "never") is None."""
    value = value.strip()
    if not value or value.startswith("0001-01-01") or value.startswith("0100-01-01"):
        return None
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@dataclass
class ClusterAdmin:
    """The cluster administrator rac names with --cluster-user/--cluster-pwd (none when the cluster has none)."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)

    def options(self) -> list[str]:
        if not self.user:
            return []
        return [f"--cluster-user={self.user}", f"--cluster-pwd={self.password or ''}"]


class Rac:
    """One cluster's rac: `rac [ras] <mode> <command> --cluster=<uuid> [options]`, its answer parsed."""

    def __init__(self, executable: str, ras: str | None = None, admin: ClusterAdmin | None = None, *,
                 encoding: str = "auto", timeout: float = 60) -> None:
        self.executable, self.ras, self.admin = executable, ras, admin or ClusterAdmin()
        self.encoding, self.timeout = encoding, timeout

    async def run(self, *arguments: str, secrets: Sequence[str | None] = ()) -> list[Block]:
        """rac with these arguments (the ras address first); its blocks, or RacError with its reason."""
        command = [self.executable, *([self.ras] if self.ras else []), *arguments]
        secrets = [self.admin.password, *secrets]
        shown = " ".join(arguments[:2])
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "LANG": os.environ.get("LANG", "C.UTF-8")},
            )
        except OSError as error:  # no rac there: nothing the cluster refused
            raise RacError(f"rac не запускается ({self.executable}): {error.strerror}", "unreachable") from None
        reading = [asyncio.ensure_future(bounded_read(process.stdout, MAX_OUTPUT_BYTES)),
                   asyncio.ensure_future(bounded_read(process.stderr, MAX_ERROR_BYTES))]
        try:
            out, err = await asyncio.wait_for(asyncio.gather(*reading), timeout=self.timeout)
            await asyncio.wait_for(process.wait(), timeout=self.timeout)
        except (asyncio.TimeoutError, OutputTooLarge) as error:
            for task in reading:
                task.cancel()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            # asyncio's wait() returns only once every pipe is closed, and a reader left full stops
            # reading: what the killed child wrote is read to its end (and dropped) first. Bounded, in
            # case something else still holds a pipe open.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(discard(process.stdout), discard(process.stderr), process.wait()), timeout=10)
            if isinstance(error, OutputTooLarge):
                raise RacError(f"rac {shown}: ответ больше {MAX_OUTPUT_BYTES // 2**20} МиБ", "refused") from None
            raise RacError(f"rac {shown}: нет ответа за {self.timeout:.0f} с", "unreachable") from None
        if process.returncode != 0:
            reason = " ".join(decode(err or out, self.encoding).split()) or f"код выхода {process.returncode}"
            message = scrub(reason, secrets)
            log.debug("rac %s failed (%s): %s", shown, process.returncode, message)
            raise RacError(message, classify(message))
        return parse_blocks(out, self.encoding)

    # ------------------------------------------------------------------ what the agent asks

    async def clusters(self) -> list[Block]:
        return await self.run("cluster", "list")

    async def infobases(self, cluster: str) -> list[Block]:
        return await self.run("infobase", "summary", "list", f"--cluster={cluster}", *self.admin.options())

    async def sessions(self, cluster: str, infobase: str | None = None) -> list[Block]:
        only = [f"--infobase={infobase}"] if infobase else []
        return await self.run("session", "list", f"--cluster={cluster}", *only, *self.admin.options())

    async def terminate(self, cluster: str, session: str, message: str | None = None) -> None:
        text = [f"--error-message={message}"] if message else []
        await self.run("session", "terminate", f"--cluster={cluster}", f"--session={session}", *text, *self.admin.options())

    async def deny_sessions(self, cluster: str, infobase: str, login: str | None, password: str | None, *,
                            deny: bool, message: str = "", permission_code: str = "") -> None:
        """Lock (deny=True) or unlock new sessions and scheduled jobs of an infobase."""
        switch = "on" if deny else "off"
        user = [f"--infobase-user={login}", f"--infobase-pwd={password or ''}"] if login else []
        await self.run(
            "infobase", "update", f"--cluster={cluster}", f"--infobase={infobase}", *user,
            f"--sessions-deny={switch}", f"--scheduled-jobs-deny={switch}",
            f"--denied-message={message if deny else ''}", f"--permission-code={permission_code if deny else ''}",
            *self.admin.options(), secrets=[password, permission_code],
        )
