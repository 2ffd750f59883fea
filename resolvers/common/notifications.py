"""Notification settings and the one way a domain event mails people: `notify`.

`notify(actor, organization_id, kind, letter, users=None)` is the entry point every domain function
calls once a change it owns is made (in the same transaction). It picks the recipients (`users`, or
the members whose role may receive `kind`, `RECIPIENT_ROLES`; the provider's staff for
MODERATION_WAITING), never the actor themselves, and decides for each by their settings (a stored
row, or `SettingsView`'s defaults):
- the kind is off: nothing;
- otherwise `letter(address)` queues the letter (an `outbox.email(...)` of its template, written by the
  caller so that every template is sent with its variables written out) inside `outbox.deferred`:
  due now when now is inside the send window, else at the window's next start;
- with a digest of N hours: due when the user's open digest is (N hours after its first letter,
  moved into the window), under the digest key `digest:<user>:<organization>`; the mail worker
  (workers/mail.py) sends the due letters of a key as one (`fold_digest`).

The defaults for someone who never set anything: every kind their role receives on, any time of day,
each letter at once, reminders on, times in Europe/Moscow.

Reminders (resolvers/common/reminders.py, run by workers/reminders.py): a contract ending, or the
balance running out at the last 30 days' spending, 30, 7 and 1 days ahead; each threshold mails a
user once (NotificationReminder), until dealt with (a contract extended has a new end; a balance topped
up past 30 days' runway forgets what was sent).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo


from foundation.clock import utcnow
from models.cloud import Database
from models.identity import User
from models.notifications import NotificationKind, NotificationSettings
from models.organizations import Membership, Organization, Role
from models.outbox import DeliveryStatus, OutboxMessage
from models.updates import UpdateSchedule
from resolvers.common import outbox
from resolvers.common import validation
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.common.validation import invalid

K = NotificationKind
ALL_ROLES = frozenset(Role)
FINANCE = frozenset({Role.OWNER, Role.ADMIN, Role.ACCOUNTANT})
MANAGERS = frozenset({Role.OWNER, Role.ADMIN})
# Who of an organization may receive each kind (what their role may see: the role table).
RECIPIENT_ROLES: dict[NotificationKind, frozenset[Role]] = {
    K.NEW_DOCUMENT: FINANCE,
    K.LOW_BALANCE: FINANCE,
    K.CONTRACT_EXPIRING: FINANCE,
    K.RELEASE_OUT: MANAGERS,
    K.UPDATE_SCHEDULED: MANAGERS,
    K.UPDATE_DONE: MANAGERS,
    K.UPDATE_FAILED: MANAGERS,
    K.SESSION_TERMINATED_BY_ADMIN: ALL_ROLES,  # the session's own user
    K.INVITE_ACCEPTED: MANAGERS,
    K.TICKET_ANSWERED: ALL_ROLES,  # the ticket's author
}
STAFF_KINDS = (K.MODERATION_WAITING,)
DEFAULT_TIME_ZONE = "Europe/Moscow"
DIGEST_HOURS = (1, 72)  # a digest collects 1 to 72 hours of letters
DIGEST_MAX_LETTERS = 100  # a longer digest starts another letter
MINUTES_A_DAY = 24 * 60

Letter = Callable[[str], Awaitable[Any]]  # queues one letter to an e-mail address: outbox.email(to, ...)


@dataclass(frozen=True)
class SettingsView:
    """A user's settings in one organization (None: the staff's own), stored or the defaults."""

    user_id: uuid.UUID
    organization_id: uuid.UUID | None
    available: tuple[NotificationKind, ...]  # the kinds this user may receive here
    muted: frozenset[NotificationKind] = frozenset()
    time_zone: str = DEFAULT_TIME_ZONE
    window_start: int | None = None  # minutes after local midnight
    window_end: int | None = None
    digest_hours: int | None = None
    reminders: bool = True
    stored: bool = False

    @property
    def enabled(self) -> list[NotificationKind]:
        return [kind for kind in self.available if kind not in self.muted]

    def wants(self, kind: NotificationKind) -> bool:
        return kind in self.available and kind not in self.muted


def available_kinds(role: Role | None) -> tuple[NotificationKind, ...]:
    """The kinds a member of `role` may receive (None: the provider's staff, outside any organization)."""
    if role is None:
        return STAFF_KINDS
    return tuple(kind for kind, roles in RECIPIENT_ROLES.items() if role in roles)


def _view(user_id: uuid.UUID, organization_id: uuid.UUID | None, role: Role | None, row: NotificationSettings | None) -> SettingsView:
    available = available_kinds(role)
    if row is None:
        return SettingsView(user_id, organization_id, available)
    muted = frozenset(K(name) for name in row.muted_kinds.split(",") if name in K.__members__)
    return SettingsView(
        user_id, organization_id, available, muted, row.time_zone, row.window_start, row.window_end,
        row.digest_hours, row.reminders, True,
    )


def _time_text(minutes: int | None) -> str | None:
    return None if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


def window_text(view: SettingsView) -> tuple[str | None, str | None]:
    return _time_text(view.window_start), _time_text(view.window_end)


# ---------------------------------------------------------------- when a letter may go


def in_window(moment: dt.datetime, view: SettingsView) -> bool:
    """Is `moment` inside the send window, in the user's time zone? [start, end); an end before the
    start is a window over midnight (22:00–07:00)."""
    if view.window_start is None or view.window_end is None:
        return True
    local = moment.astimezone(ZoneInfo(view.time_zone))
    minute = local.hour * 60 + local.minute
    start, end = view.window_start, view.window_end
    return start <= minute < end if start < end else (minute >= start or minute < end)


def not_before(moment: dt.datetime, view: SettingsView) -> dt.datetime:
    """`moment` when it is inside the window, else the window's next start (in UTC)."""
    if in_window(moment, view):
        return moment
    zone = ZoneInfo(view.time_zone)
    local = moment.astimezone(zone)
    start = dt.time(view.window_start // 60, view.window_start % 60)
    for days in range(0, 3):
        day = local.date() + dt.timedelta(days=days)
        candidate = dt.datetime.combine(day, start, tzinfo=zone).astimezone(dt.timezone.utc)
        if candidate > moment and in_window(candidate, view):
            return candidate
    return moment  # unreachable: a window starts every day


def digest_key(user_id: uuid.UUID, organization_id: uuid.UUID | None) -> str:
    return f"digest:{user_id}:{organization_id or 'staff'}"


async def _digest_due(view: SettingsView, now: dt.datetime) -> dt.datetime:
    """When the user's open digest goes: the one waiting (not yet claimed, not full), else N hours from now."""
    key = digest_key(view.user_id, view.organization_id)
    waiting = await OutboxMessage.filter(
        digest_key=key, status=DeliveryStatus.PENDING, lease_owner=None, next_attempt_at__gt=now
    ).order_by("next_attempt_at").limit(DIGEST_MAX_LETTERS + 1).values_list("next_attempt_at", flat=True)
    if waiting and len(waiting) <= DIGEST_MAX_LETTERS:
        return waiting[0]
    return not_before(now + dt.timedelta(hours=view.digest_hours or 1), view)


# ---------------------------------------------------------------- notify: the one entry point


async def _settings_of(user_roles: dict[uuid.UUID, Role | None], organization_id: uuid.UUID | None) -> dict[uuid.UUID, SettingsView]:
    rows = {
        row.user_id: row for row in await NotificationSettings.filter(
            user_id__in=list(user_roles), organization_id=organization_id
        )
    } if user_roles else {}
    return {user_id: _view(user_id, organization_id, role, rows.get(user_id)) for user_id, role in user_roles.items()}


async def recipients(
    organization_id: uuid.UUID | None, kind: NotificationKind, users: Iterable[uuid.UUID] | None = None,
) -> list[tuple[User, SettingsView]]:
    """Who `kind` would mail about the organization (with a proven e-mail), with their settings, the
    kind on for each. `users` narrows to those; the staff for a staff kind."""
    if kind in STAFF_KINDS:
        query = User.filter(is_staff=True, is_active=True, email__isnull=False)
        if users is not None:
            query = query.filter(id__in=list(users))
        people = {user.id: user for user in await query}
        roles: dict[uuid.UUID, Role | None] = dict.fromkeys(people)
        organization_id = None
    else:
        query = Membership.filter(organization_id=organization_id, role__in=list(RECIPIENT_ROLES[kind]))
        if users is not None:
            query = query.filter(user_id__in=list(users))
        memberships = await query.filter(user__is_active=True, user__email__isnull=False).select_related("user")
        people = {m.user_id: m.user for m in memberships}
        roles = {m.user_id: m.role for m in memberships}
    views = await _settings_of(roles, organization_id)
    return [(people[user_id], view) for user_id, view in sorted(views.items(), key=lambda item: str(item[0])) if view.wants(kind)]


async def notify(
    actor: Actor, organization_id: uuid.UUID | None, kind: NotificationKind, letter: Letter,
    *, users: Iterable[uuid.UUID] | None = None, exclude: Iterable[uuid.UUID] = (),
) -> list[uuid.UUID]:
    """Mail `kind` about the organization to whom it concerns (`users`, or every member whose role
    receives it; never the actor, nor `exclude`), each by their settings (module docstring); in the
    caller's transaction. The users a letter was queued for."""
    viewer = getattr(actor, "viewer", None)
    skipped = {*exclude, *([viewer.user_id] if viewer is not None else [])}
    now = utcnow()
    queued = []
    for user, view in await recipients(organization_id, kind, users):
        if user.id in skipped:
            continue  # nobody is told of what they did themselves
        if view.digest_hours:
            with outbox.deferred(await _digest_due(view, now), digest_key(user.id, view.organization_id)):
                await letter(user.email)
        else:
            with outbox.deferred(not_before(now, view)):
                await letter(user.email)
        queued.append(user.id)
    return queued


async def fold_digest(letters: list[OutboxMessage], lease_owner: str) -> OutboxMessage | None:
    """The mail worker's due letters of one digest key, leased to it: one letter holding them all,
    queued leased to the same worker, and theirs marked sent (resolvers/common/outbox.py `folded`).
    The caller runs it in one transaction, which rolls back on outbox.DigestLeaseLost (a letter no
    longer the worker's)."""
    if not letters:
        return None
    items = "\n\n".join(f"— {m.subject}\n{m.body.strip()}" for m in letters)
    digest = await outbox.email(letters[0].recipient, "notification_digest", count=len(letters), items=items)
    await outbox.folded(letters, lease_owner, digest)
    return digest


# ---------------------------------------------------------------- the viewer's settings (GraphQL)


async def _role_or_refuse(ctx: RequestContext, organization_id: uuid.UUID | None, field: str) -> Role | None:
    """The viewer's role in the organization; None for the staff's own settings. NOT_FOUND where the
    viewer is no member (nothing tells the organization exists), FORBIDDEN for a non-staff's own."""
    ctx.require_viewer()
    if organization_id is None:
        if not await ctx.prepare_staff_flag():
            raise UserFacingError(ErrorCode.FORBIDDEN, "Only the provider's staff have settings outside an organization.", field)
        return None
    await ctx.memberships()
    role = ctx.role_in(organization_id)
    if role is None:
        raise UserFacingError(ErrorCode.NOT_FOUND, "No such organization.", field)
    return role


async def settings_of_viewer(ctx: RequestContext, organization_id: uuid.UUID | None) -> SettingsView | None:
    """The viewer's own settings in the organization (the defaults when never set); None where the
    viewer is no member (or, without an organization, no staff)."""
    try:
        role = await _role_or_refuse(ctx, organization_id, "organization_id")
    except UserFacingError:
        return None
    return (await _settings_of({ctx.viewer.user_id: role}, organization_id))[ctx.viewer.user_id]


async def settings_of(ctx: RequestContext, organizations: list[Organization], args: dict[str, Any]) -> list[SettingsView | None]:
    """Organization.notificationSettings: the viewer's own in each, one query for all."""
    if ctx.viewer is None:
        return [None] * len(organizations)
    await ctx.memberships()
    ids = [o.id for o in organizations]
    rows = {
        row.organization_id: row
        for row in await NotificationSettings.filter(user_id=ctx.viewer.user_id, organization_id__in=ids)
    } if ids else {}
    views: list[SettingsView | None] = []
    for organization in organizations:
        role = ctx.role_in(organization.id)
        views.append(None if role is None else _view(ctx.viewer.user_id, organization.id, role, rows.get(organization.id)))
    return views


def _minutes(value: str, field: str) -> int:
    hours, minutes = validation.time_of_day(value, field).split(":")
    return int(hours) * 60 + int(minutes)


async def update_settings(
    ctx: RequestContext, organization_id: uuid.UUID | None, *, enabled_kinds: list[NotificationKind] | None,
    time_zone: str | None, window_start: str | None, window_end: str | None, digest_hours: int | None,
    reminders: bool | None, clear_window: bool = False, clear_digest: bool = False,
) -> SettingsView:
    """The viewer changes their own settings in one organization (any member may: they are theirs);
    what is not given stays. A window needs both ends, different; a digest 1 to 72 hours."""
    role = await _role_or_refuse(ctx, organization_id, "organization_id")
    user_id = ctx.viewer.user_id
    current = (await _settings_of({user_id: role}, organization_id))[user_id]
    muted = set(current.muted)
    if enabled_kinds is not None:
        if len(enabled_kinds) > len(K):
            raise invalid("enabled_kinds", "Too many kinds.")
        unknown = [k.value for k in enabled_kinds if k not in current.available]
        if unknown:
            raise invalid("enabled_kinds", f"Your role does not receive {', '.join(sorted(set(unknown)))} here.")
        muted = {k for k in current.available if k not in enabled_kinds}
    zone = validation.timezone(time_zone.strip(), "time_zone") if time_zone is not None else current.time_zone
    start, end = current.window_start, current.window_end
    if clear_window:
        start = end = None
    elif window_start is not None or window_end is not None:
        if window_start is None or window_end is None:
            raise invalid("window_start" if window_start is None else "window_end", "A send window needs both its start and its end.")
        start, end = _minutes(window_start, "window_start"), _minutes(window_end, "window_end")
        if start == end:
            raise invalid("window_end", "The window's end must differ from its start (leave the window out to send at any time).")
    digest = None if clear_digest else (current.digest_hours if digest_hours is None else digest_hours)
    if digest is not None and not DIGEST_HOURS[0] <= digest <= DIGEST_HOURS[1]:
        raise invalid("digest_hours", f"A digest collects {DIGEST_HOURS[0]} to {DIGEST_HOURS[1]} hours of letters.")
    values = dict(
        muted_kinds=",".join(sorted(k.value for k in muted)), time_zone=zone, window_start=start, window_end=end,
        digest_hours=digest, reminders=current.reminders if reminders is None else reminders, updated_at=utcnow(),
    )
    row = await NotificationSettings.filter(user_id=user_id, organization_id=organization_id).select_for_update().first()
    if row is None:
        row = await NotificationSettings.create(user_id=user_id, organization_id=organization_id, **values)
    else:
        await NotificationSettings.filter(id=row.id).update(**values)
        await row.refresh_from_db()
    return _view(user_id, organization_id, role, row)


# ---------------------------------------------------------------- the letters: one per kind, each its template's variables


async def release_out(actor: Actor, organization: Organization, release: Any, databases: list[str]) -> list[uuid.UUID]:
    """RELEASE_OUT: the release is out, for the organization's `databases` of its configuration."""
    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "release_out", organization_name=organization.name, configuration=release.configuration,
            version=release.version, databases=", ".join(databases),
        )
    return await notify(actor, organization.id, K.RELEASE_OUT, letter)


async def new_document(actor: Actor, organization: Organization, document: Any, title: str) -> list[uuid.UUID]:
    """NEW_DOCUMENT: an invoice, act or contract published (`title` its kind's name)."""
    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "new_document", organization_name=organization.name, document=title, number=document.number,
            period=document.period or document.issued_on.strftime("%d.%m.%Y"),
        )
    return await notify(actor, organization.id, K.NEW_DOCUMENT, letter)


async def _run_names(run: Any) -> tuple[Organization, Any]:
    return await Organization.get(id=run.organization_id), await Database.get(id=run.database_id)


def local_time_text(moment: dt.datetime, time_zone: str) -> str:
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local:%d.%m.%Y %H:%M} ({time_zone})"


async def update_scheduled(actor: Actor, run: Any) -> list[uuid.UUID]:
    """UPDATE_SCHEDULED: a run got its time (in the schedule's time zone)."""
    organization, database = await _run_names(run)
    schedule = await UpdateSchedule.filter(database_id=database.id).first()
    when = local_time_text(run.scheduled_for, (schedule.timezone if schedule else None) or DEFAULT_TIME_ZONE)

    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "update_scheduled", organization_name=organization.name, database_name=database.name,
            version=run.target_version or database.version, scheduled_for=when,
        )
    return await notify(actor, organization.id, K.UPDATE_SCHEDULED, letter)


async def update_done(actor: Actor, run: Any) -> list[uuid.UUID]:
    """UPDATE_DONE: a run succeeded."""
    organization, database = await _run_names(run)

    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "update_done", organization_name=organization.name, database_name=database.name,
            version=database.version,
        )
    return await notify(actor, organization.id, K.UPDATE_DONE, letter)


async def update_failed(actor: Actor, run: Any) -> list[uuid.UUID]:
    """UPDATE_FAILED: a run failed for good (its last attempt, or its executor gone)."""
    organization, database = await _run_names(run)

    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "update_failed", organization_name=organization.name, database_name=database.name,
            reason=run.message or "-",
        )
    return await notify(actor, organization.id, K.UPDATE_FAILED, letter)


async def moderation_waiting(actor: Actor, organization: Organization) -> list[uuid.UUID]:
    """MODERATION_WAITING: the provider's staff told that an organization waits for moderation."""
    async def letter(to: str) -> Any:
        return await outbox.email(to, "moderation_waiting", organization_name=organization.name, inn=organization.inn)
    return await notify(actor, None, K.MODERATION_WAITING, letter)


async def invite_accepted(actor: Actor, organization: Organization, member: User, role: Role) -> list[uuid.UUID]:
    """INVITE_ACCEPTED: the owner and admins told that someone they invited joined."""
    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "invite_accepted", organization_name=organization.name, member_name=member.full_name, role=role.value,
        )
    return await notify(actor, organization.id, K.INVITE_ACCEPTED, letter, exclude=[member.id])


async def ticket_answered(
    actor: Actor, organization: Organization, author: User, subject: str, staff_name: str, text: str,
) -> list[uuid.UUID]:
    """TICKET_ANSWERED: the ticket's author told that the provider answered (while still a member)."""
    async def letter(to: str) -> Any:
        return await outbox.email(
            to, "ticket_answered", full_name=author.full_name, subject=subject, organization_name=organization.name,
            staff_name=staff_name, text=text,
        )
    return await notify(actor, organization.id, K.TICKET_ANSWERED, letter, users=[author.id])


async def sessions_terminated(actor: Actor, sessions: list[Any]) -> list[uuid.UUID]:
    """SESSION_TERMINATED_BY_ADMIN: each session's own user, when someone else asked to end it (one
    letter per user and organization, naming the databases)."""
    viewer = getattr(actor, "viewer", None)
    if viewer is None:
        return []
    by_user: dict[tuple[uuid.UUID, uuid.UUID], list[Any]] = {}
    for session in sessions:
        if session.user_id is not None and session.user_id != viewer.user_id:
            by_user.setdefault((session.organization_id, session.user_id), []).append(session)
    if not by_user:
        return []
    organizations = {o.id: o for o in await Organization.filter(id__in=list({org for org, _ in by_user}))}
    database_ids = list({s.database_id for group in by_user.values() for s in group if s.database_id})
    databases = {d.id: d.name for d in await Database.filter(id__in=database_ids)} if database_ids else {}
    queued = []
    for (organization_id, user_id), group in by_user.items():
        organization = organizations[organization_id]
        names = ", ".join(sorted({databases.get(s.database_id, "-") for s in group}))

        async def letter(to: str, organization: Organization = organization, names: str = names) -> Any:
            return await outbox.email(to, "session_terminated", organization_name=organization.name, database_name=names)
        queued += await notify(actor, organization_id, K.SESSION_TERMINATED_BY_ADMIN, letter, users=[user_id])
    return queued
