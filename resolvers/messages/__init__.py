"""The e-mail and SMS texts, one file per message in this folder, and the one function that fills them.

A file (`<name>.txt`, UTF-8, Russian) is a header, an empty line, then the text:

    # What the message is for (a comment; any number of them).
    # Переменные: organization_name, code          (or «# Переменные: нет»)
    Тема: The e-mail's subject, may use variables  (only in e-mails; an SMS has none)

    The text, with `${variable}` where a value goes ($$ for a dollar sign).

The text runs to the end of the file except the file's own final line break: a text that ends with
a line break is written with an empty last line. Filling is strict (`string.Template`, nothing
more is needed): the variables the text uses must be exactly the ones the header names, and a
caller must give exactly those, each a str or an int — a missing or an unknown variable is an
error, never an empty string or a literal `${name}` in a letter.

The folder lives under `resolvers/` because the domain functions that send messages import it, and
`resolvers/` does not import the composition root (`kabinet/`) for anything but its basics. The
texts are package data (pyproject.toml), so an installed wheel finds them.

Besides, the few values that are text themselves (role names, the list of databases, a moment in
Moscow time) are written here, beside the texts they go into.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import string
from dataclasses import dataclass
from importlib import resources
from zoneinfo import ZoneInfo

from models.organizations import Role

SUBJECT_PREFIX = "Тема:"
VARIABLES_PREFIX = "# Переменные:"
MESSAGE_TIMEZONE = ZoneInfo("Europe/Moscow")


class MessageError(LookupError):
    """A template that is malformed, or filled with variables other than the ones it names."""


@dataclass(frozen=True)
class MessageTemplate:
    name: str
    variables: frozenset[str]
    subject: string.Template | None
    text: string.Template

    @property
    def is_email(self) -> bool:
        return self.subject is not None


@dataclass(frozen=True)
class Message:
    subject: str | None
    text: str


def names() -> list[str]:
    """Every template in the folder."""
    return sorted(f.name.removesuffix(".txt") for f in resources.files(__name__).iterdir() if f.name.endswith(".txt"))


@functools.cache
def template(name: str) -> MessageTemplate:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise MessageError(f"Bad message template name {name!r}.")
    source = resources.files(__name__).joinpath(f"{name}.txt")
    if not source.is_file():
        raise MessageError(f"No message template {name!r} (resolvers/messages/{name}.txt).")
    content = source.read_text(encoding="utf-8")
    header, separator, text = content.partition("\n\n")
    if not separator:
        raise MessageError(f"{name}: the header must be followed by an empty line.")
    text = text.removesuffix("\n")
    declared: frozenset[str] | None = None
    subject = None
    for line in header.split("\n"):
        if line.startswith(VARIABLES_PREFIX):
            listed = line.removeprefix(VARIABLES_PREFIX).strip()
            declared = frozenset() if listed == "нет" else frozenset(v.strip() for v in listed.split(","))
        elif line.startswith(SUBJECT_PREFIX):
            subject = string.Template(line.removeprefix(SUBJECT_PREFIX).strip())
        elif not line.startswith("#"):
            raise MessageError(f"{name}: header line {line!r} is neither a comment nor «{SUBJECT_PREFIX} …».")
    if declared is None:
        raise MessageError(f"{name}: the header must list the variables («{VARIABLES_PREFIX} a, b» or «нет»).")
    parts = [string.Template(text)] + ([subject] if subject else [])
    used: set[str] = set()
    for part in parts:
        if not part.is_valid():
            raise MessageError(f"{name}: a `$` that is neither `${{variable}}` nor `$$`.")
        used.update(part.get_identifiers())
    if used != declared:
        raise MessageError(f"{name}: uses {sorted(used)} but names {sorted(declared)} in its header.")
    return MessageTemplate(name, declared, subject, string.Template(text))


def render(name: str, **values: str | int) -> Message:
    """The message `name` filled with exactly its variables (MessageError otherwise)."""
    found = template(name)
    given = set(values)
    if given != found.variables:
        missing, unknown = sorted(found.variables - given), sorted(given - found.variables)
        raise MessageError(f"{name}: missing variables {missing}, unknown variables {unknown}.")
    for key, value in values.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise MessageError(f"{name}: variable {key} is {type(value).__name__}, not text or a number.")
    values = {k: str(v) for k, v in values.items()}
    subject = found.subject.substitute(values) if found.subject else None
    return Message(subject, found.text.substitute(values))


# ---------------------------------------------------------------- values that are text themselves


ROLE_NAMES = {
    Role.OWNER: "Владелец абонента",
    Role.ADMIN: "Администратор абонента",
    Role.ACCOUNTANT: "Бухгалтер абонента",
    Role.USER: "Пользователь абонента",
}

# How a join request's approval names the role it gave (never OWNER).
QUOTED_ROLE_NAMES = {Role.ADMIN: "«Администратор»", Role.ACCOUNTANT: "«Бухгалтер»", Role.USER: "«Пользователь»"}


def moscow_time(moment: dt.datetime) -> str:
    return f"{moment.astimezone(MESSAGE_TIMEZONE):%d.%m.%Y %H:%M} (МСК)"


def databases_list(role: Role, databases: list[tuple[str, str]]) -> str:
    """The databases an invite opens, as (name, configuration), one per line; or what the role sees."""
    if databases:
        return "\n".join(f"  • {name} ({configuration})" for name, configuration in databases)
    if role in (Role.OWNER, Role.ADMIN):
        return "  все информационные базы абонента"
    if role == Role.ACCOUNTANT:
        return "  доступ к информационным базам этой ролью не предусмотрен"
    return "  пока не назначены: их может открыть вам владелец или администратор абонента"


def inviter_phrase(inviter_name: str | None) -> str:
    return f"{inviter_name} приглашает" if inviter_name is not None else "Вас приглашают"

