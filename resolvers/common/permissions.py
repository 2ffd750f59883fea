"""The role table, as data: what each role may do, which objects of each GraphQL type a viewer sees,
and which fields need more than seeing their object. The one source for every path to an object.

Three tables, read by `schema.authorization` (the gate every loaded or returned object passes) and
by the resolvers that narrow their SQL to what the viewer sees:

- `ROLE_PERMISSIONS`: the contract README's role table (`../shared/api/README.md`, "Roles").
- `TYPE_RULES`: for each object type, whether the viewer sees an object (SEE), is refused it
  (FORBIDDEN: a member whose role may not see such objects; a link from a visible object to it
  answers a FORBIDDEN error, a list leaves it out) or does not know it exists (HIDDEN: null, or
  left out). Decided on the object, whatever path reached it. The rules of an organization's
  objects (`InOrganization`) also answer as a query filter (`scope`), for lists read in SQL.
- `FIELD_RULES`: fields of a visible object that need a permission in its organization; a viewer
  without it gets a FORBIDDEN error on that field and the rest of the query answers.

An integrator's API token (`kit_`, resolvers/identity/api_tokens.py) acts as the member who made it,
cut down here too: every rule asks `ctx.permissions_in(organization)`, which is the member's current
role's permissions (`ROLE_PERMISSIONS`) and, for a token, only those its scopes grant
(`TOKEN_SCOPE_PERMISSIONS`) in its one organization (the context knows no other membership). Its
writes are the mutations `TOKEN_MUTATIONS` names, with the write scope of their domain; no other.

`PERSONAL_FIELDS` are the fields whose answer depends on who the viewer is beyond their role in the
object's organization (their own rows, their other organizations): shared work that reaches one is
shared only by the same person.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from tortoise.expressions import Q

from foundation.clock import today
from resolvers.common.errors import Refusal, forbidden
from models.organizations import Role


class Permission(Enum):
    SEE_ORGANIZATION = auto()  # the organization, its products, contracts and cloud subscription
    SEE_FINANCE = auto()  # balance, transactions, charges, documents
    SEE_MEMBERS = auto()  # members and invites
    MANAGE_MEMBERS = auto()  # invite, revoke invites, change roles, remove members, decide join requests
    SEE_ALL_SESSIONS = auto()  # see and terminate any session, or all
    SEE_OWN_SESSIONS = auto()  # see and terminate one's own sessions only
    SEE_ALL_DATABASES = auto()
    SEE_GRANTED_DATABASES = auto()  # only the databases granted to the member
    MANAGE_UPDATES = auto()  # change update schedules, skip a run
    EXTEND_SUBSCRIPTION = auto()
    SEE_AUDIT_LOG = auto()
    TRANSFER_OWNERSHIP = auto()  # hand the organization to another member (the owner becomes an admin)
    REQUISITES = auto()  # see the requisites (bank details) and a pending change of them, change or ask to change them
    SEE_ALL_TICKETS = auto()  # every support ticket of the organization (resolvers/support/tickets.py)
    WRITE_TICKETS = auto()  # write tickets and see (and write in) one's own
    REQUEST_TARIFF_CHANGE = auto()  # ask the provider for another tariff, more sessions or databases (a ticket)
    MANAGE_API_TOKENS = auto()  # make, see and revoke the organization's API tokens for integrators


P = Permission
_STAFF = frozenset({
    P.SEE_ORGANIZATION, P.SEE_FINANCE, P.SEE_MEMBERS, P.MANAGE_MEMBERS, P.SEE_ALL_SESSIONS,
    P.SEE_ALL_DATABASES, P.MANAGE_UPDATES, P.SEE_AUDIT_LOG, P.REQUISITES, P.SEE_ALL_TICKETS, P.WRITE_TICKETS,
    P.REQUEST_TARIFF_CHANGE, P.MANAGE_API_TOKENS,
})
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _STAFF | {P.EXTEND_SUBSCRIPTION, P.TRANSFER_OWNERSHIP},
    Role.ADMIN: _STAFF,
    Role.ACCOUNTANT: frozenset({P.SEE_ORGANIZATION, P.SEE_FINANCE, P.SEE_MEMBERS, P.REQUISITES, P.WRITE_TICKETS}),
    Role.USER: frozenset({P.SEE_ORGANIZATION, P.SEE_OWN_SESSIONS, P.SEE_GRANTED_DATABASES, P.WRITE_TICKETS}),
}


def role_may(role: Role | None, permission: Permission) -> bool:
    """May a member with this role (None: not a member) do this? (A viewer: `ctx.may`, which also
    applies an API token's scopes.)"""
    return role is not None and permission in ROLE_PERMISSIONS[role]


# ---------------------------------------------------------------- integrators' API tokens
# A token's scopes: `<domain>:read` or `<domain>:write` (write implies read). What each domain lets a
# token see (reading, with the creator's role: both must allow it); every token sees the organization
# itself, its products, contracts, subscription and managers (SEE_ORGANIZATION). No scope carries
# the tickets, the audit log beyond `members`, handing the organization over, or the tokens themselves.
TOKEN_DOMAINS = ("billing", "members", "cloud", "updates")
TOKEN_BASE_PERMISSIONS = frozenset({P.SEE_ORGANIZATION})
TOKEN_SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "billing": frozenset({P.SEE_FINANCE, P.REQUISITES}),
    "members": frozenset({P.SEE_MEMBERS, P.MANAGE_MEMBERS, P.SEE_AUDIT_LOG}),
    "cloud": frozenset({
        P.SEE_ALL_SESSIONS, P.SEE_OWN_SESSIONS, P.SEE_ALL_DATABASES, P.SEE_GRANTED_DATABASES, P.EXTEND_SUBSCRIPTION,
        P.REQUEST_TARIFF_CHANGE,
    }),
    "updates": frozenset({P.SEE_ALL_DATABASES, P.SEE_GRANTED_DATABASES, P.MANAGE_UPDATES}),
}
# The mutations a token may call, each with the domain whose `write` scope it needs (the creator's
# role still decides as for them). Every other mutation is FORBIDDEN to a token: signing in and out,
# passwords, addresses, notification settings, leaving or handing over an organization, adding one,
# tickets, the provider staff's work, and API tokens themselves (a leaked token cannot make more).
TOKEN_MUTATIONS: dict[str, str] = {
    "inviteMember": "members", "resendInvite": "members", "revokeInvite": "members", "changeMemberRole": "members",
    "requestMemberRemoval": "members", "confirmMemberRemoval": "members", "updateMemberDatabases": "members",
    "approveJoinRequest": "members", "rejectJoinRequest": "members", "updateMember": "members", "createMember": "members",
    "setDatabaseLock": "cloud", "clearDatabaseLock": "cloud", "terminateSession": "cloud", "terminateAllSessions": "cloud",
    "extendSubscription": "cloud", "requestTariffChange": "cloud",
    "scheduleUpdate": "updates", "skipUpdateRun": "updates", "scheduleOneOffUpdate": "updates",
    "changeRequisites": "billing",
}


@dataclass(frozen=True)
class TokenGrant:
    """What an integrator's token lets its creator's rights do: one organization, the permissions its
    scopes read (`permissions`), the domains it may write (`writes`). `token_id` names it (the
    login id of its requests: revoking it ends them, resolvers/identity/sign_ins.py)."""

    token_id: uuid.UUID
    organization_id: uuid.UUID
    scopes: frozenset[str]

    @property
    def permissions(self) -> frozenset[Permission]:
        granted = set(TOKEN_BASE_PERMISSIONS)
        for scope_name in self.scopes:
            granted |= TOKEN_SCOPE_PERMISSIONS.get(scope_name.partition(":")[0], frozenset())
        return frozenset(granted)

    def may_write(self, domain: str) -> bool:
        return f"{domain}:write" in self.scopes

    def may_call(self, mutation: str) -> bool:
        """May a request with this token run this mutation (its domain's write scope)?"""
        domain = TOKEN_MUTATIONS.get(mutation)
        return domain is not None and self.may_write(domain)


def permissions_of(role: Role | None, grant: TokenGrant | None, organization_id: uuid.UUID) -> frozenset[Permission]:
    """What a member with `role` may do in an organization, through `grant` when a token asks."""
    if role is None:
        return frozenset()
    held = ROLE_PERMISSIONS[role]
    if grant is None:
        return held
    return held & grant.permissions if organization_id == grant.organization_id else frozenset()


class Sight(Enum):
    SEE = auto()
    HIDDEN = auto()  # as if it did not exist: null, or left out of a list
    FORBIDDEN = auto()  # a FORBIDDEN error where a link leads to it


# A rule reads the viewer's request context (memberships loaded; facts a type needs prepared, see
# `schema.authorization`) and the object's row.
Rule = Callable[[Any, Any], Sight]


@dataclass(frozen=True)
class Narrowing:
    """The objects of an organization a partial permission admits (a USER's own sessions, granted
    databases), said twice side by side: as a test of one row, and as a query filter for a list
    (`tests/test_role_table.py` holds the two to the same rows)."""

    admits: Callable[[Any, Any], bool]  # (ctx, row)
    where: Callable[[Any, uuid.UUID], Q]  # (ctx, organization id)


@dataclass(frozen=True)
class Scope:
    """What a viewer sees of one organization's objects of a type: with `sight` SEE, the rows
    `narrowing` matches (None: every one); otherwise none, refused (FORBIDDEN) or unknown (HIDDEN)."""

    sight: Sight
    narrowing: Q | None = None


@dataclass(frozen=True)
class InOrganization:
    """Members holding one of `everyone` in the row's organization see every such object; those
    holding one of `some` see the ones `narrowing` admits; other members are refused it; everyone
    else does not know it exists. The same rule answers for one row (calling it) and for a list of
    an organization's rows (`scope`)."""

    everyone: frozenset[Permission]
    some: frozenset[Permission] = frozenset()
    narrowing: Narrowing | None = None
    organization: str = "organization_id"  # the row's attribute naming its organization

    def _sight(self, ctx: Any, organization_id: uuid.UUID) -> Sight | None:
        """SEE, FORBIDDEN or HIDDEN for the whole organization; None when `narrowing` decides."""
        if ctx.role_in(organization_id) is None:
            return Sight.HIDDEN
        granted = ctx.permissions_in(organization_id)
        if not self.everyone.isdisjoint(granted):
            return Sight.SEE
        if not self.some.isdisjoint(granted):
            return None
        return Sight.FORBIDDEN

    def __call__(self, ctx: Any, row: Any) -> Sight:
        sight = self._sight(ctx, getattr(row, self.organization))
        if sight is not None:
            return sight
        return Sight.SEE if self.narrowing.admits(ctx, row) else Sight.HIDDEN

    def scope(self, ctx: Any, organization_id: uuid.UUID) -> Scope:
        """The rule as a query filter over the organization's rows (memberships loaded)."""
        sight = self._sight(ctx, organization_id)
        if sight is not None:
            return Scope(sight)
        return Scope(Sight.SEE, self.narrowing.where(ctx, organization_id))


def in_organization(
    everyone: set[Permission],
    some: set[Permission] = frozenset(),
    narrowing: Narrowing | None = None,
    organization: str = "organization_id",
) -> InOrganization:
    if some and narrowing is None:
        raise ValueError("a partial permission needs the narrowing it admits")
    return InOrganization(frozenset(everyone), frozenset(some), narrowing, organization)


def _own(ctx: Any, row: Any) -> bool:
    return ctx.viewer is not None and row.user_id == ctx.viewer.user_id


def _own_where(ctx: Any, organization_id: uuid.UUID) -> Q:
    return Q(user_id=ctx.viewer.user_id) if ctx.viewer is not None else Q(id__in=[])


OWN = Narrowing(_own, _own_where)


def granted(attribute: str) -> Narrowing:
    """The rows whose `attribute` is a database granted to the viewer in the row's organization."""
    return Narrowing(
        lambda ctx, row: getattr(row, attribute) in ctx.granted_databases(row.organization_id),
        lambda ctx, organization_id: Q(**{f"{attribute}__in": list(ctx.granted_databases(organization_id))}),
    )


_see_members = in_organization({P.SEE_MEMBERS})
_see_finance = in_organization({P.SEE_FINANCE})


def _membership(ctx: Any, row: Any) -> Sight:
    """One's own memberships (in the organizations the context knows: a token's one), and those of
    organizations where one sees members."""
    return Sight.SEE if _own(ctx, row) and ctx.role_in(row.organization_id) is not None else _see_members(ctx, row)


def _document(ctx: Any, row: Any) -> Sight:
    """Invoices and acts of month M are published on the 10th of M+1: nobody sees them before, and
    nobody once the provider withdrew one."""
    if row.visible_from > today() or row.withdrawn_at is not None:
        return Sight.HIDDEN
    return _see_finance(ctx, row)


def _user(ctx: Any, row: Any) -> Sight:
    """Oneself; members of an organization where one sees members; someone asking to join an
    organization where one decides; anyone, for the provider's staff (`ctx.users_in_sight`)."""
    return Sight.SEE if ctx.user_in_sight(row.id) else Sight.HIDDEN


def _join_request(ctx: Any, row: Any) -> Sight:
    if (_own(ctx, row) and not ctx.token_bound()) or ctx.may(row.organization_id, P.MANAGE_MEMBERS):
        return Sight.SEE
    return Sight.HIDDEN


def _signed_in(ctx: Any, row: Any) -> Sight:
    """What the provider publishes (releases) is no secret to a signed-in user."""
    return Sight.SEE if ctx.viewer is not None else Sight.HIDDEN


STAFF_SCOPE = "staff"  # the service token scope that carries the staff's rights (records.SCOPES)


def has_staff_rights(user: Any = None, scopes: frozenset[str] | None = None) -> bool:
    """The one rule of the provider's staff rights (moderation, releases, the staff desk): an active
    user marked `is_staff` (read afresh from their row), or a service account whose token has the
    `staff` scope. resolvers/common/staff_rights.py applies it to a caller; the type gate's staff flag too."""
    if user is not None:
        return bool(user.is_staff and user.is_active)
    return scopes is not None and STAFF_SCOPE in scopes


def _staff_only(ctx: Any, row: Any) -> Sight:
    return Sight.SEE if ctx.viewer_is_staff() else Sight.HIDDEN


def _through_database(ctx: Any, row: Any) -> Sight:
    """A cluster (resolvers/cloud/clusters.py ClusterOfDatabase) is seen by whoever sees the database it is
    reached through: it has no organization of its own."""
    return TYPE_RULES["Database"](ctx, row.database)


_see_organization = in_organization({P.SEE_ORGANIZATION})


def _dashboard(ctx: Any, row: Any) -> Sight:
    """An organization's summary (resolvers/organizations/dashboard.py), no table of its own: seen with the organization."""
    return _see_organization(ctx, row)


def _own_settings(ctx: Any, row: Any) -> Sight:
    """Notification settings are their user's alone: in an organization they belong to, or (staff) their own."""
    if ctx.viewer is None or row.user_id != ctx.viewer.user_id:
        return Sight.HIDDEN
    if row.organization_id is None:
        return Sight.SEE if ctx.viewer_is_staff() else Sight.HIDDEN
    return Sight.SEE if ctx.role_in(row.organization_id) is not None else Sight.HIDDEN


_see_requisites = in_organization({P.REQUISITES}, organization="id")


def _requisites(ctx: Any, row: Any) -> Sight:
    """The requisites are columns of the organization's own row (no table, no list to narrow)."""
    return _see_requisites(ctx, row)
_manage_api_tokens = in_organization({P.MANAGE_API_TOKENS})


def _api_token(ctx: Any, row: Any) -> Sight:
    """An integrator's API token (a view of the token store's row, no table of its own to narrow): its
    organization's OWNER and ADMIN; never a token (no scope carries MANAGE_API_TOKENS)."""
    return _manage_api_tokens(ctx, row)


# Support tickets (resolvers/support/tickets.py): OWNER and ADMIN see all of their organization's, every
# member their own (the author's); the provider's staff every ticket, to answer it.
AUTHORED = Narrowing(
    lambda ctx, row: ctx.viewer is not None and row.author_id == ctx.viewer.user_id,
    lambda ctx, organization_id: Q(author_id=ctx.viewer.user_id) if ctx.viewer is not None else Q(id__in=[]),
)
TICKETS_IN_ORGANIZATION = in_organization({P.SEE_ALL_TICKETS}, {P.WRITE_TICKETS}, AUTHORED)


def _ticket(ctx: Any, row: Any) -> Sight:
    return Sight.SEE if ctx.viewer_is_staff() else TICKETS_IN_ORGANIZATION(ctx, row)


def _ticket_part(ctx: Any, row: Any) -> Sight:
    """A comment or attachment is seen with its ticket (the loaders hand it over as `row.ticket`)."""
    return _ticket(ctx, row.ticket)


TYPE_RULES: dict[str, Rule] = {
    "Organization": in_organization({P.SEE_ORGANIZATION}, organization="id"),
    "Product": in_organization({P.SEE_ORGANIZATION}),
    "Contract": in_organization({P.SEE_ORGANIZATION}),
    "CloudSubscription": in_organization({P.SEE_ORGANIZATION}),
    "BalanceTransaction": _see_finance,
    "Charge": _see_finance,
    "Document": _document,
    "Invite": _see_members,
    "Membership": _membership,
    "User": _user,
    "AuditEntry": in_organization({P.SEE_AUDIT_LOG}),
    "Database": in_organization({P.SEE_ALL_DATABASES}, {P.SEE_GRANTED_DATABASES}, granted("id")),
    "UpdateRun": in_organization({P.SEE_ALL_DATABASES}, {P.SEE_GRANTED_DATABASES}, granted("database_id")),
    "Session": in_organization({P.SEE_ALL_SESSIONS}, {P.SEE_OWN_SESSIONS}, OWN),
    "Cluster": _through_database,
    "JoinRequest": _join_request,
    "Release": _signed_in,
    "ModeratedOrganization": _staff_only,
    "Claimant": _staff_only,  # part of its ModeratedOrganization
    "DeliveryFailure": _staff_only,
    "RefusedRecord": _staff_only,
    "WaitingDocuments": _staff_only,
    "StaffInvitation": _staff_only,  # the staff desk's view of an invitation staff sent
    "Dashboard": _dashboard,  # its parts have field rules (FIELD_RULES)
    "NotificationSettings": _own_settings,  # the viewer's own, whatever the role (resolvers/common/notifications.py)
    "Requisites": _requisites,
    "RequisitesChange": in_organization({P.REQUISITES}),
    "Manager": in_organization({P.SEE_ORGANIZATION}),  # the provider's managers: every member may call them
    "Ticket": _ticket,
    "TicketComment": _ticket_part,
    "TicketAttachment": _ticket_part,
    "ApiToken": _api_token,  # resolvers/identity/api_tokens.py ApiToken
}

# Each type's rule as one organization-wide decision, for a reader that narrows whole lists in SQL
# (schema/sql_json.py): the rules of an organization's objects, and Document's without its row part
# (a document not yet published, or withdrawn, is hidden from everyone: the documents list's own
# filter, resolvers/billing/reads.py `visible_documents`, leaves those rows out).
LIST_RULES: dict[str, InOrganization] = {
    **{name: rule for name, rule in TYPE_RULES.items() if isinstance(rule, InOrganization)},
    "Document": _see_finance,
}


def scope(type_name: str, ctx: Any, organization_id: uuid.UUID) -> Scope:
    """Which of an organization's objects of a type the viewer sees, as a query filter: the list
    form of the type's row rule, for the resolvers that narrow their SQL (memberships loaded)."""
    rule = TYPE_RULES[type_name]
    if not isinstance(rule, InOrganization):
        raise TypeError(f"{type_name}'s rule is not one of an organization's objects")
    return rule.scope(ctx, organization_id)


def visible(type_name: str, ctx: Any, organization_id: uuid.UUID, what: str) -> Q | Refusal | None:
    """`scope` as a list takes it: all (None), some (the filter), or a FORBIDDEN refusal naming `what`."""
    seen = scope(type_name, ctx, organization_id)
    return seen.narrowing if seen.sight is Sight.SEE else forbidden(what)


# One scope helper per type: every list, live list and check of that type asks it.
def database_scope(ctx: Any, organization_id: uuid.UUID) -> Q | Refusal | None:
    """Which of an organization's databases the viewer sees: all (None), the granted ones, or none."""
    return visible("Database", ctx, organization_id, "databases")


def session_scope(ctx: Any, organization_id: uuid.UUID) -> Q | Refusal | None:
    """Which sessions the viewer sees: all (owner, admin: None), their own (user), or none."""
    return visible("Session", ctx, organization_id, "sessions")


def update_run_scope(ctx: Any, organization_id: uuid.UUID) -> Q | Refusal | None:
    """Which update runs the viewer sees: those of the databases their role sees."""
    return visible("UpdateRun", ctx, organization_id, "databases")


# Types whose objects need facts beyond the viewer's memberships, loaded for a batch at once.
NEEDS_USERS_IN_SIGHT = frozenset({"User"})
NEEDS_STAFF_FLAG = frozenset({
    "ModeratedOrganization", "Claimant", "DeliveryFailure", "RefusedRecord", "WaitingDocuments", "StaffInvitation", "User",
    "Ticket", "TicketComment", "TicketAttachment",
})


@dataclass(frozen=True)
class FieldRule:
    """A field of a visible object that needs one of `permissions` in the object's organization
    (or, with `own`, that is the viewer's own row)."""

    permissions: frozenset[Permission]
    what: str  # for the FORBIDDEN message: "Your role … may not see {what}."
    own: bool = False

    def allows(self, ctx: Any, organization_id: uuid.UUID, row: Any) -> bool:
        if not self.permissions.isdisjoint(ctx.permissions_in(organization_id)):
            return True
        return self.own and _own(ctx, row)


def _field(what: str, *permissions: Permission, own: bool = False) -> FieldRule:
    return FieldRule(frozenset(permissions), what, own)


_DATABASES = (P.SEE_ALL_DATABASES, P.SEE_GRANTED_DATABASES)
_SESSIONS = (P.SEE_ALL_SESSIONS, P.SEE_OWN_SESSIONS)
FIELD_RULES: dict[tuple[str, str], FieldRule] = {
    ("Organization", "members"): _field("members", P.SEE_MEMBERS),
    ("Organization", "invites"): _field("invites", P.SEE_MEMBERS),
    ("Organization", "auditLog"): _field("the audit log", P.SEE_AUDIT_LOG),
    ("Organization", "balance"): _field("the balance", P.SEE_FINANCE),
    ("Organization", "balanceTransactions"): _field("balance transactions", P.SEE_FINANCE),
    ("Organization", "charges"): _field("charges", P.SEE_FINANCE),
    ("Organization", "documents"): _field("documents", P.SEE_FINANCE),
    ("Organization", "databases"): _field("databases", *_DATABASES),
    ("Organization", "sessions"): _field("sessions", *_SESSIONS),
    ("Database", "sessions"): _field("sessions", *_SESSIONS),
    ("Membership", "databases"): _field("this member's databases", P.SEE_ALL_DATABASES, own=True),
    # The dashboard's parts, as what they sum up (resolvers/organizations/dashboard.py).
    ("Dashboard", "updates"): _field("update runs", *_DATABASES),
    ("Dashboard", "people"): _field("members", P.SEE_MEMBERS),
    ("Dashboard", "balanceRunway"): _field("the balance", P.SEE_FINANCE),
    ("Organization", "requisites"): _field("the requisites", P.REQUISITES),
    ("Organization", "apiTokens"): _field("API tokens", P.MANAGE_API_TOKENS),
}

PERSONAL_FIELDS = frozenset({
    ("User", "memberships"),  # the viewer's own memberships, in organizations other viewers are not in
    ("Membership", "databases"),  # one's own grants
    ("User", "unprovenEmail"), ("User", "unprovenPhone"),  # shown to the user themselves only
    ("Organization", "notificationSettings"),  # the viewer's own settings there
    ("Query", "me"),
    ("TicketAttachment", "downloadUrl"),  # a link signed for the viewer themselves
})
