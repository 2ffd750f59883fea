"""The isolation matrix (issue 10): every object type, reached by every path from the roots up to a
depth, as every demo role and as the other organization's owner, checked against the role table.

The queries come from introspection of the served schema, so a new field or type is walked without
anyone listing it. Roots: every query field (ids filled from the demo organizations, both of them),
node(id:) of ids read from the database and of every id answered, the payload of `login` (a mutation
payload that reaches the signed-in user's whole graph), and the three subscriptions over WebSocket. What each type may show is listed here (RULES, from the contract README's role
table) and computed from the database by the test itself, never asked of the code under test; a type
reachable from a root without a rule fails the test, so a new type needs one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from events.log import DATA, SESSIONS, UPDATES, PendingAnnouncements, run_payload, session_payload
from models.audit import AuditEntry
from models.billing import BalanceTransaction, Charge, Document, DocumentKind
from models.cloud import ClientKind, CloudSubscription, Database, Session, SessionStatus, SubscriptionExtension
from models.identity import User
from models.organizations import (
    DatabaseGrant,
    Invite,
    InviteDatabase,
    JoinRequest,
    Membership,
    Organization,
    Role,
)
from models.products import Contract, Product
from models.program_tokens import ProgramToken, ProgramTokenOrganization, TokenKind
from models.requisites import Manager
from models.updates import Release, UpdateRun, UpdateRunStatus
from foundation.ids import from_global_id, to_global_id
from resolvers.cloud import clusters
from models.tickets import SupportTicket, TicketAttachment, TicketAttachmentFile, TicketStatus
from resolvers.support import tickets as ticket_resolvers
from resolvers.support.tickets import TICKETS
from tests import factories
from tests.both_paths import answered_so_far, stable, statement_path
from tests.conftest import DEMO_PASSWORD
from tests.introspection import ServedSchema
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket

ROMASHKA_INN, VASILEK_INN = "7707083893", "771234567859"
DEMO_VIEWERS = (
    "owner@romashka.example", "admin@romashka.example", "buh@romashka.example", "user@romashka.example",
    "owner@vasilek.example",
)
LEVELS = 5  # objects along a path, the root's included
FIRST = 3  # page size wherever a field takes `first`
PATHS_PER_QUERY = 24  # one query carries the paths of one root call, this many at most
ALIASES_PER_QUERY = 40  # node(id:) looked up this many at a time (the served limit is 50)

# ---------------------------------------------------------------- the oracle: the role table as data

OWNER, ADMIN, ACCOUNTANT, USER = Role.OWNER, Role.ADMIN, Role.ACCOUNTANT, Role.USER
STAFF = frozenset({OWNER, ADMIN})
FINANCE = frozenset({OWNER, ADMIN, ACCOUNTANT})
ANY_ROLE = frozenset({OWNER, ADMIN, ACCOUNTANT, USER})


@dataclass(frozen=True)
class Scope:
    """Whose an object is, read from the database: its organization, database, and person."""

    organization: uuid.UUID | None = None
    database: uuid.UUID | None = None
    user: uuid.UUID | None = None  # the member of a Membership, a Session's user, a JoinRequest's requester, a User
    published: bool = True  # a Document's visible_from has come


@dataclass
class Viewer:
    email: str
    user_id: uuid.UUID
    is_staff: bool
    roles: dict[uuid.UUID, Role]
    grants: dict[uuid.UUID, set[uuid.UUID]]  # organization -> databases granted to the viewer's membership
    visible_users: set[uuid.UUID]

    def role_in(self, organization: uuid.UUID | None) -> Role | None:
        return self.roles.get(organization) if organization else None


@dataclass(frozen=True)
class OrgRule:
    """Seen by `roles` of its organization; by `own_roles` when it is theirs (None: by a non-member
    too); by `granted_roles` when its database is granted to them; and only while `when` holds."""

    roles: frozenset = frozenset()
    own_roles: frozenset = frozenset()
    granted_roles: frozenset = frozenset()
    when: Callable[[Scope], bool] | None = None

    def visible(self, viewer: Viewer, scope: Scope) -> bool:
        if scope.organization is None or (self.when and not self.when(scope)):
            return False
        role = viewer.role_in(scope.organization)
        return (
            role in self.roles
            or (role in self.own_roles and scope.user == viewer.user_id)
            or (role in self.granted_roles and scope.database in viewer.grants.get(scope.organization, set()))
        )

    def possible(self, role: Role | None) -> bool:
        """May this role see any object of the type in an organization? If not, a field leading there is FORBIDDEN."""
        return role in self.roles | self.own_roles | self.granted_roles


@dataclass(frozen=True)
class Rule:
    """A rule that is not about an organization."""

    visible: Callable[[Viewer, Scope], bool]


MEMBERS = OrgRule(roles=ANY_ROLE)
FINANCES = OrgRule(roles=FINANCE)
DATABASES = OrgRule(roles=STAFF, granted_roles=frozenset({USER}))
RULES: dict[str, OrgRule | Rule] = {
    "Organization": MEMBERS,
    "Product": MEMBERS,
    "Contract": MEMBERS,
    "CloudSubscription": MEMBERS,
    "SubscriptionExtension": MEMBERS,  # part of its CloudSubscription
    "SubscriptionExtensionTerms": MEMBERS,  # part of its CloudSubscription (issue 20)
    "BalanceTransaction": FINANCES,
    "Charge": FINANCES,
    "Balance": FINANCES,
    "PrepaidService": FINANCES,
    "Document": OrgRule(roles=FINANCE, when=lambda scope: scope.published),
    "Membership": OrgRule(roles=FINANCE, own_roles=ANY_ROLE),
    "Invite": FINANCES,
    "Database": DATABASES,
    "UpdateRun": DATABASES,
    "UpdateSchedule": DATABASES,  # part of its Database
    "UpdateRunReason": DATABASES,  # part of its UpdateRun (issue 20)
    "Session": OrgRule(roles=STAFF, own_roles=frozenset({USER})),
    "AuditEntry": OrgRule(roles=STAFF),
    # resolvers/common/permissions.py _join_request: the requester's own, or OWNER/ADMIN of its organization
    "JoinRequest": OrgRule(roles=STAFF, own_roles=ANY_ROLE | {None}),
    "User": Rule(lambda viewer, scope: scope.user == viewer.user_id or scope.user in viewer.visible_users),
    "Release": Rule(lambda viewer, scope: True),  # any signed-in user
    "ModeratedOrganization": Rule(lambda viewer, scope: viewer.is_staff),  # the provider's staff only
    "Claimant": Rule(lambda viewer, scope: viewer.is_staff),  # part of its ModeratedOrganization (issue 17)
    "DeliveryFailure": Rule(lambda viewer, scope: viewer.is_staff),  # the staff desk
    "RefusedRecord": Rule(lambda viewer, scope: viewer.is_staff),
    "WaitingDocuments": Rule(lambda viewer, scope: viewer.is_staff),  # the staff desk (no row of its own)
    "StaffInvitation": Rule(lambda viewer, scope: viewer.is_staff),  # the staff desk's invitations (issue 18)
    # resolvers/common/permissions.py _own_settings: the viewer's own, in an organization of theirs (every role), or the
    # staff's own without one; no id, seen with its organization (Organization.notificationSettings) or at the root
    "NotificationSettings": Rule(
        lambda viewer, scope: viewer.role_in(scope.organization) is not None if scope.organization else viewer.is_staff
    ),
    # Requisites and a change waiting for the provider: who may change them (issue 20); the managers: every member.
    "Requisites": FINANCES,
    "RequisitesChange": FINANCES,
    "Manager": MEMBERS,
    "ApiToken": OrgRule(roles=STAFF),  # integrators' tokens (issue 21): their organization's OWNER and ADMIN
    # Support tickets (issue 20): OWNER and ADMIN every one of their organization's, any member their own
    "Ticket": OrgRule(roles=STAFF, own_roles=ANY_ROLE),
    "TicketComment": OrgRule(roles=STAFF, own_roles=ANY_ROLE),  # part of its ticket (its scope is the ticket's)
    "TicketAttachment": OrgRule(roles=STAFF, own_roles=ANY_ROLE),  # part of its ticket
    "TicketChange": Rule(lambda viewer, scope: True),  # a live view's container
    # Containers of a live view: they carry nothing of their own; what they hold is checked itself.
    "SessionListUpdate": Rule(lambda viewer, scope: True),
    "SessionEvent": Rule(lambda viewer, scope: True),
    "OrganizationDataChange": Rule(lambda viewer, scope: True),
    "DatabaseLock": Rule(lambda viewer, scope: True),  # part of its database, seen with it
    "Cluster": Rule(lambda viewer, scope: True),  # no id of its own: reached through a database, seen with it
    # The dashboard summary (issue 20): no id of its own, each part as what it sums up.
    "Dashboard": MEMBERS,
    "ContractEnd": MEMBERS,
    "UpdatesSummary": OrgRule(roles=frozenset({OWNER, ADMIN, USER})),  # a USER's counted over their databases
    "UpdateRunStatusCount": OrgRule(roles=frozenset({OWNER, ADMIN, USER})),
    "PeopleSummary": FINANCES,  # members are seen by OWNER, ADMIN, ACCOUNTANT
    "BalanceRunway": FINANCES,
    "OpenTicketsSummary": MEMBERS,  # every member counts what they see of the tickets (their own at least)
    "TicketStatusCount": MEMBERS,
    # What signing in answers (the matrix walks it as a mutation payload), and a refusal's reasons.
    "AuthPayload": Rule(lambda viewer, scope: True),
    "UserError": Rule(lambda viewer, scope: True),
}
# Fields whose reading has a rule of its own, on top of the rule of what they lead to.
FIELD_RULES: dict[tuple[str, str], Callable[[Viewer, Scope], bool]] = {
    ("Membership", "databases"): lambda viewer, scope: scope.user == viewer.user_id or viewer.role_in(scope.organization) in STAFF,
}


def _in_org(row: Any) -> Scope:
    return Scope(organization=row.organization_id)


# How the test reads an object's scope from the database, by GraphQL type (objects with an id).
SCOPES: dict[str, tuple[type, Callable[[Any], Scope]]] = {
    "Organization": (Organization, lambda row: Scope(organization=row.id)),
    "Product": (Product, _in_org),
    "Contract": (Contract, _in_org),
    "CloudSubscription": (CloudSubscription, _in_org),
    "BalanceTransaction": (BalanceTransaction, _in_org),
    "Charge": (Charge, _in_org),
    "Document": (Document, lambda row: Scope(organization=row.organization_id, published=row.visible_from <= _today())),
    "Membership": (Membership, lambda row: Scope(organization=row.organization_id, user=row.user_id)),
    "Invite": (Invite, _in_org),
    "Database": (Database, lambda row: Scope(organization=row.organization_id, database=row.id)),
    "UpdateRun": (UpdateRun, lambda row: Scope(organization=row.organization_id, database=row.database_id)),
    "Session": (Session, lambda row: Scope(organization=row.organization_id, database=row.database_id, user=row.user_id)),
    "AuditEntry": (AuditEntry, _in_org),
    "JoinRequest": (JoinRequest, lambda row: Scope(organization=row.organization_id, user=row.user_id)),
    "User": (User, lambda row: Scope(user=row.id)),
    "Release": (Release, lambda row: Scope()),
    "Manager": (Manager, _in_org),
    "Ticket": (SupportTicket, lambda row: Scope(organization=row.organization_id, user=row.author_id)),
}


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


async def load_viewer(email: str) -> Viewer:
    """Who the viewer is and what the role table lets them see, from the database."""
    user = await User.get(email=email)
    memberships = await Membership.filter(user_id=user.id)
    roles = {m.organization_id: m.role for m in memberships}
    grants: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for grant in await DatabaseGrant.filter(membership_id__in=[m.id for m in memberships]):
        grants[next(m.organization_id for m in memberships if m.id == grant.membership_id)].add(grant.database_id)
    members_seen = [org for org, role in roles.items() if role in FINANCE]
    visible_users = {user.id} | set(await Membership.filter(organization_id__in=members_seen).values_list("user_id", flat=True))
    # whoever asks to join an organization the viewer decides for (JoinRequest.user is theirs to see)
    deciding = [org for org, role in roles.items() if role in STAFF]
    visible_users |= set(await JoinRequest.filter(organization_id__in=deciding).values_list("user_id", flat=True))
    return Viewer(email, user.id, user.is_staff, roles, dict(grants), visible_users)


class Scopes:
    """Objects' scopes by global id, read from the database in one query per type and kept."""

    def __init__(self) -> None:
        self.known: dict[str, Scope | None] = {}

    async def load(self, global_ids: set[str]) -> None:
        wanted: dict[str, dict[uuid.UUID, str]] = defaultdict(dict)
        for global_id in global_ids - self.known.keys():
            decoded = from_global_id(global_id)
            if decoded and decoded[0] in SCOPES:
                wanted[decoded[0]][decoded[1]] = global_id
            else:
                self.known[global_id] = None
        for type_name, by_pk in wanted.items():
            model, scope_of = SCOPES[type_name]
            rows = {row.id: row for row in await model.filter(id__in=list(by_pk))}
            for pk, global_id in by_pk.items():
                self.known[global_id] = scope_of(rows[pk]) if pk in rows else None


# ---------------------------------------------------------------- the queries: paths from the roots

Step = tuple[str, str, str]  # field, its arguments as text, the concrete type it reaches


@dataclass(frozen=True)
class RootCall:
    """One root field with its arguments filled: `organization(id: "…")`, `node(id: "…")`, `me`."""

    field: str
    arguments: str
    types: tuple[str, ...]  # the concrete types it may answer


class Walker:
    """Generates the paths of the served schema and renders them as queries."""

    def __init__(self, schema: ServedSchema, max_depth: int) -> None:
        self.schema = schema
        self.max_depth = max_depth
        self.skipped: set[str] = set()  # fields that need an argument the walk cannot fill

    def arguments(self, owner: str, field: dict[str, Any]) -> str | None:
        """`(first: 3)` where a page size is taken; None when a required argument cannot be filled."""
        given = []
        for arg in field["args"]:
            if arg["name"] == "first":
                given.append(f"first: {FIRST}")
            elif self.schema.required(arg):
                self.skipped.add(f"{owner}.{field['name']}")
                return None
        return f"({', '.join(given)})" if given else ""

    def cost(self, field: dict[str, Any]) -> int:
        """Levels of the query a field adds: a connection adds edges and node too."""
        return 3 if self.schema.is_connection(self.schema.named(field["type"])) else 1

    def children(self, type_name: str) -> Iterator[tuple[dict[str, Any], str, str]]:
        for field_ in self.schema.fields(type_name).values():
            target = self.schema.target(field_)
            if self.schema.kind(target) in ("SCALAR", "ENUM"):
                continue
            arguments = self.arguments(type_name, field_)
            if arguments is None:
                continue
            for concrete in self.schema.concrete(target):
                yield field_, arguments, concrete

    def paths(self, type_name: str, depth: int, levels: int = LEVELS) -> list[list[Step]]:
        """Every path of object fields from an object of `type_name` selected at query depth `depth`
        (fields above it), `levels` objects long at most (wrappers such as connections not counted),
        each ending where it must: at the level or the depth limit, or at a type with nothing below."""
        if levels <= 1:
            return [[]]
        found = []
        for field_, arguments, concrete in self.children(type_name):
            step_depth = depth + self.cost(field_)
            if step_depth > self.max_depth:
                continue
            below = 0 if self.schema.kind(concrete) != "OBJECT" or self.schema.is_wrapper(concrete) else 1
            for rest in self.paths(concrete, step_depth, levels - below):
                found.append([(field_["name"], arguments, concrete), *rest])
        return found or [[]]

    # ---------------------------------------------------------------- rendering

    def render_object(self, type_name: str, trie: dict) -> str:
        parts = ["__typename", *self.schema.leaf_fields(type_name)]
        fields = self.schema.fields(type_name)
        for (name, arguments), by_type in trie.items():
            parts.append(f"{name}{arguments} {self.render_value(fields[name], by_type)}")
        return " ".join(parts)

    def render_value(self, field_: dict[str, Any], by_type: dict[str, dict]) -> str:
        named = self.schema.named(field_["type"])
        if self.schema.is_connection(named):
            edge = self.schema.edge_type(named)
            page_info = self.schema.named(self.schema.fields(named)["pageInfo"]["type"])
            inner = self.render_targets(self.schema.connection_node(named), by_type)
            return (
                f"{{ {' '.join(self.schema.leaf_fields(named))} pageInfo {{ {' '.join(self.schema.leaf_fields(page_info))} }} "
                f"edges {{ {' '.join(self.schema.leaf_fields(edge))} node {inner} }} }}"
            )
        return self.render_targets(named, by_type)

    def render_targets(self, named: str, by_type: dict[str, dict]) -> str:
        if self.schema.kind(named) == "OBJECT":
            return f"{{ {self.render_object(named, by_type.get(named, {}))} }}"
        fragments = " ".join(f"... on {t} {{ {self.render_object(t, sub)} }}" for t, sub in sorted(by_type.items()))
        return f"{{ __typename {fragments} }}"

    def query(self, root: RootCall, paths: list[list[Step]], *, operation: str = "query") -> str:
        by_type: dict[str, dict] = {}
        for path in paths:
            # a path starts at the root call's concrete type, recorded as its first pseudo-step
            (first_type, rest) = path[0][2], path[1:]
            node = by_type.setdefault(first_type, {})
            for name, arguments, concrete in rest:
                node = node.setdefault((name, arguments), {}).setdefault(concrete, {})
        owner = {"query": self.schema.query_type, "mutation": self.schema.mutation_type}.get(operation, self.schema.subscription_type)
        root_field = self.schema.fields(owner)[root.field]
        return f"{operation} {{ {root.field}{root.arguments} {self.render_value(root_field, by_type)} }}"

    def root_paths(self, root: RootCall, owner: str, levels: int = LEVELS) -> list[list[Step]]:
        root_field = self.schema.fields(owner)[root.field]
        depth = self.cost(root_field)
        return [[("", "", concrete), *rest] for concrete in root.types for rest in self.paths(concrete, depth, levels)]


# ---------------------------------------------------------------- checking an answer against the oracle


@dataclass
class Verdict:
    """What the matrix found: violations grouped by kind (how many, and the first one in full), and
    what the viewer was shown."""

    violations: dict[str, list] = field(default_factory=dict)  # kind -> [count, first example]
    seen_types: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    seen_ids: set[str] = field(default_factory=set)
    answered: int = 0

    def fail(self, kind: str, example: str) -> None:
        if kind in self.violations:
            self.violations[kind][0] += 1
        else:
            self.violations[kind] = [1, example]

    def report(self) -> str:
        return f"{sum(c for c, _ in self.violations.values())} violations of the role table, {len(self.violations)} kinds:\n" + "\n".join(
            f"- {kind} (x{count}), e.g.\n    {example}" for kind, (count, example) in self.violations.items()
        )


def _role(role: Role | None) -> str:
    return role.value if role else "a non-member"


def _path_text(path: list) -> str:
    return ".".join(str(p) for p in path)


def _at(data: Any, path: list) -> tuple[Any, int]:
    """The value at `path` in `data`, and how many steps of the path it could follow."""
    value = data
    for index, key in enumerate(path):
        if value is None:
            return None, index
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None, index
    return value, len(path)


def _ids_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("id"), str) and "__typename" in value:
            yield value["id"]
        for item in value.values():
            yield from _ids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ids_in(item)


class Checker:
    """Walks one answer: every object against its type's rule, every forbidden field for null and FORBIDDEN."""

    def __init__(self, schema: ServedSchema, scopes: Scopes, viewer: Viewer, verdict: Verdict,
                 allowed_codes: frozenset[str] = frozenset({"FORBIDDEN"})) -> None:
        self.schema, self.scopes, self.viewer, self.verdict = schema, scopes, viewer, verdict
        self.allowed_codes = allowed_codes

    async def check(self, body: dict, query: str, owner: str, root_scope: Scope = Scope()) -> list[list[str]]:
        """Check an answer; the fields (as in a path's steps) of the errors that nulled more than their
        own field: what lay beside them went unseen."""
        self.query = query
        data = body.get("data") or {}
        self.errors: dict[tuple, set[str]] = defaultdict(set)
        propagated = []
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            path = error.get("path") or []
            self.errors[tuple(path)].add(code)
            if code not in self.allowed_codes:
                self.fail(f"an error with code {code!r}", f"{error.get('message')!r} at {_path_text(path)}")
            value, reached = _at(data, path)
            if path and reached == len(path) and value is not None:
                self.fail("an error beside data at its path", f"at {_path_text(path)}: {str(value)[:200]}")
            if reached < len(path):
                propagated.append([str(p) for p in path[1:] if not isinstance(p, int) and p not in ("edges", "node")])
        self.verdict.answered += 1
        await self.scopes.load(set(_ids_in(data)))
        for key, value in data.items():
            name = key if key in self.schema.fields(owner) else key.split("__")[0]
            self.check_field(owner, root_scope, self.schema.fields(owner)[name], value, [key])
        return propagated

    def fail(self, kind: str, detail: str = "") -> None:
        self.verdict.fail(f"{self.viewer.email}: {kind}", f"{detail}\n    in {self.query[:400]}")

    @staticmethod
    def via(path: list) -> str:
        """The fields that led to an object, without list positions and connection wrappers."""
        return ".".join(str(p).split("__")[0] for p in path if not isinstance(p, int) and p not in ("edges", "node")) or "the root"

    def check_field(self, owner: str, scope: Scope, field_: dict[str, Any], value: Any, path: list) -> None:
        target = self.schema.target(field_)
        rule = RULES.get(target)
        field_rule = FIELD_RULES.get((owner, field_["name"]))
        role = self.viewer.role_in(scope.organization)
        if field_rule is not None:
            forbidden = not field_rule(self.viewer, scope)
        else:
            forbidden = isinstance(rule, OrgRule) and scope.organization is not None and not rule.possible(role)
        if forbidden:
            named = self.schema.named(field_["type"])
            if value == [] and field_rule is None and self.schema.is_list(field_["type"]):
                return  # a plain list holds only what the role sees (docs/security.md): none of them
            if value is not None:
                self.fail(f"{owner}.{field_['name']} answers data to {_role(role)}", f"at {_path_text(path)}: {str(value)[:200]}")
            elif (self.schema.is_list(field_["type"]) or self.schema.is_connection(named)) and "FORBIDDEN" not in self.errors.get(tuple(path), set()):
                self.fail(f"{owner}.{field_['name']} is null for {_role(role)} without a FORBIDDEN error", f"at {_path_text(path)}")
            return
        if value is None:
            return
        if self.schema.is_connection(self.schema.named(field_["type"])):
            edges = value.get("edges") or []
            if "totalCount" in value and not (value.get("pageInfo") or {}).get("hasNextPage", True):
                if value["totalCount"] != len(edges):
                    self.fail(f"{owner}.{field_['name']}: totalCount is not the number of items on the only page", f"{value['totalCount']} but {len(edges)} items at {_path_text(path)}")
            for index, edge in enumerate(edges):
                self.check_object(edge["node"], scope, [*path, "edges", index, "node"])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if item is not None:
                    self.check_object(item, scope, [*path, index])
        elif isinstance(value, dict):
            self.check_object(value, scope, path)

    def check_object(self, obj: dict, parent: Scope, path: list) -> None:
        type_name = obj.get("__typename")
        if type_name is None:
            self.fail("an object without __typename", f"at {_path_text(path)}")
            return
        rule = RULES.get(type_name)
        if rule is None:
            self.fail(f"no rule for type {type_name}: add one to RULES", f"reached at {_path_text(path)}")
            return
        scope = parent
        global_id = obj.get("id")
        if type_name in SCOPES:
            scope = self.scopes.known.get(global_id) if global_id else None
            decoded = from_global_id(global_id) if global_id else None
            if scope is None or decoded is None or decoded[0] != type_name:
                self.fail(f"a {type_name} that is not one of the database", f"{global_id} at {_path_text(path)}")
                return
            self.verdict.seen_ids.add(global_id)
        if not rule.visible(self.viewer, scope):
            role = self.viewer.role_in(scope.organization)
            self.fail(f"sees a {type_name} as {_role(role)} through {self.via(path)}", f"{global_id or ''} at {_path_text(path)}: {str(obj)[:200]}")
            return
        self.verdict.seen_types[self.viewer.email].add(type_name)
        fields = self.schema.fields(type_name)
        for key, value in obj.items():
            if key == "__typename" or key not in fields:
                continue
            if self.schema.kind(self.schema.named(fields[key]["type"])) in ("SCALAR", "ENUM"):
                continue
            self.check_field(type_name, scope, fields[key], value, [*path, key])


# ---------------------------------------------------------------- running the matrix


@dataclass
class World:
    schema: ServedSchema
    walker: Walker
    scopes: Scopes
    organizations: dict[str, uuid.UUID]  # INN -> id of the demo organizations
    sample_ids: dict[tuple[str, uuid.UUID | None], list[str]]  # (type, organization) -> global ids from the database
    sign_in_client: Any  # for `login`: an address of its own, so per-address limits do not reach other tests

    def sampled(self) -> set[str]:
        return {global_id for ids in self.sample_ids.values() for global_id in ids}


async def sample_ids(organizations: list[uuid.UUID]) -> dict[tuple[str, uuid.UUID | None], list[str]]:
    """A few ids of every type per demo organization, straight from the database (not from answers)."""
    samples: dict[tuple[str, uuid.UUID | None], list[str]] = defaultdict(list)
    for type_name, (model, scope_of) in SCOPES.items():
        for organization in organizations:
            if type_name == "Organization":
                rows = await model.filter(id=organization)
            elif type_name == "User":  # its members and whoever asks to join it
                people = [*await Membership.filter(organization_id=organization).values_list("user_id", flat=True),
                          *await JoinRequest.filter(organization_id=organization).values_list("user_id", flat=True)]
                rows = await model.filter(id__in=people)
            elif type_name == "Release":
                rows = await model.all().limit(2) if organization == organizations[0] else []
            else:
                rows = await model.filter(organization_id=organization).order_by("-created_at").limit(3)
            samples[(type_name, organization)] += [to_global_id(type_name, row.id) for row in rows]
    return samples


async def post(gql: Any, email: str | None, query: str, http: Any = None) -> dict:
    """POST a query as `email` (None: without a token) with the suite's client, or `http`. A query the
    statement path (schema/sql_json.py, PostgreSQL) answered is run by the executor too: the same answer."""
    headers = {"Authorization": f"Bearer {await gql.token_for(email)}"} if email else {}
    answered = answered_so_far()
    response = await (http or gql.http).post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code < 500, f"{response.status_code} for {query[:300]}: {response.text[:500]}"
    body = response.json()
    if http is None and answered_so_far() > answered:  # the statement path answered: the executor must agree
        with statement_path(gql.app, False):
            executed = (await gql.http.post("/graphql", json={"query": query}, headers=headers)).json()
        assert stable(body) == stable(executed), f"the statement path and the executor differ on {query[:500]}"
    return body


async def run_paths(gql: Any, world: World, checker: Checker, root: RootCall, paths: list[list[Step]],
                    operation: str = "query", http: Any = None) -> None:
    """Run the paths of one root call in queries of PATHS_PER_QUERY; a query whose errors nulled more
    than their own field (or that was refused as too complex) is split, so no path goes unchecked.
    A mutation is sent without a token from `http` (the viewer is who it signs in)."""
    pending = [paths[i:i + PATHS_PER_QUERY] for i in range(0, len(paths), PATHS_PER_QUERY)]
    owner = world.schema.mutation_type if operation == "mutation" else world.schema.query_type
    while pending:
        chunk = pending.pop()
        query = world.walker.query(root, chunk, operation=operation)
        body = await post(gql, None if operation == "mutation" else checker.viewer.email, query, http)
        codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}
        if "QUERY_TOO_COMPLEX" in codes and len(chunk) > 1:
            pending += [chunk[: len(chunk) // 2], chunk[len(chunk) // 2:]]
            continue
        propagated = await checker.check(body, query, owner)
        # split when an error nulled what other paths of the query went through as well
        if len(chunk) > 1 and any(any([step[0] for step in path[1:len(fields) + 1]] != fields for path in chunk) for fields in propagated):
            pending += [chunk[: len(chunk) // 2], chunk[len(chunk) // 2:]]


async def check_node_lookups(gql: Any, world: World, checker: Checker, global_ids: list[str], *, found: bool) -> None:
    """node(id:) for each id: null and no error when the role table hides it (nothing tells that it
    exists); with `found`, the object itself when the table shows it. organization(id:) the same."""
    await world.scopes.load(set(global_ids))
    calls = []
    for global_id in global_ids:
        decoded = from_global_id(global_id)
        type_name = decoded[0]
        selection = f"__typename ... on {type_name} {{ {' '.join(world.schema.leaf_fields(type_name))} }}"
        calls.append((global_id, "node", f'node(id: "{global_id}") {{ {selection} }}'))
        if type_name == "Organization":
            calls.append((global_id, "organization", f'organization(id: "{global_id}") {{ __typename {" ".join(world.schema.leaf_fields(type_name))} }}'))
    for start in range(0, len(calls), ALIASES_PER_QUERY):
        batch = calls[start:start + ALIASES_PER_QUERY]
        query = "{ " + " ".join(f"{root}__{i}: {text}" for i, (_, root, text) in enumerate(batch)) + " }"
        body = await post(gql, checker.viewer.email, query)
        await checker.check(body, query, world.schema.query_type)
        data = body.get("data") or {}
        for i, (global_id, root, _) in enumerate(batch):
            key = f"{root}__{i}"
            type_name = from_global_id(global_id)[0]
            scope = world.scopes.known.get(global_id)
            visible = scope is not None and RULES[type_name].visible(checker.viewer, scope)
            answer = data.get(key)
            if found and visible and (answer is None or answer.get("id") != global_id):
                checker.fail(f"{root}(id:) of a {type_name} the role table shows answers null", f"{global_id}: {answer!r}")
            if not visible:
                if answer is not None:
                    checker.fail(f"{root}(id:) of a {type_name} the role table hides answers it", f"{global_id}: {str(answer)[:200]}")
                if any(tuple(path[:1]) == (key,) for path in checker.errors):
                    checker.fail(f"{root}(id:) of a hidden {type_name} answers an error (it tells the id exists)", global_id)


def root_calls(world: World, owner: str) -> list[RootCall]:
    """Every root field of `owner`, with required ids filled from the demo organizations' own ids."""
    schema = world.schema
    calls: list[RootCall] = []
    for field_ in schema.fields(owner).values():
        target = schema.target(field_)
        if schema.kind(target) in ("SCALAR", "ENUM"):
            continue
        given = [f"first: {FIRST}"] if any(a["name"] == "first" for a in field_["args"]) else []
        required = [a for a in field_["args"] if schema.required(a)]
        if not required:
            calls.append(RootCall(field_["name"], f"({', '.join(given)})" if given else "", tuple(schema.concrete(target))))
            continue
        if len(required) > 1 or schema.named(required[0]["type"]) != "ID":
            world.walker.skipped.add(f"{owner}.{field_['name']}")
            continue
        arg = required[0]["name"]
        if arg.endswith("Id"):
            wanted = arg[:-2][0].upper() + arg[1:-2]
        else:
            wanted = target
        for (type_name, organization), ids in sorted(world.sample_ids.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            if not ids or (type_name != wanted and type_name not in schema.concrete(wanted)):
                continue
            arguments = ", ".join([f'{arg}: "{ids[0]}"', *given])
            types = (type_name,) if type_name in schema.concrete(target) else tuple(schema.concrete(target))
            calls.append(RootCall(field_["name"], f"({arguments})", types))
    return calls


# ---------------------------------------------------------------- what the demo data lacks, added for the walk


@pytest_asyncio.fixture(scope="module")
async def scenery(app) -> Any:
    """Objects of every type in both demo organizations, that the demo data has none of (an invite, a
    join request, an audit entry, an unpublished document, runs, a USER's session in a database not
    granted to them, the subscription's extension), and two people who belong to both organizations, one of them with an active
    session in Romashka (an ACCOUNTANT there and a USER in Vasilek; an ADMIN in both): removed afterwards."""
    romashka = await Organization.get(inn=ROMASHKA_INN)
    vasilek = await Organization.get(inn=VASILEK_INN)
    owner = await User.get(email="owner@romashka.example")
    user = await User.get(email="user@romashka.example")
    trade = await Database.filter(organization_id=romashka.id, is_typical=False).first()
    accounting = await Database.filter(organization_id=romashka.id, is_typical=True).first()
    now = dt.datetime.now(dt.timezone.utc)
    created: list[Any] = []
    invite = await Invite.create(
        organization=romashka, email=factories.unique_email("invitee"), role=Role.USER, token_hash=uuid.uuid4().hex,
        expires_at=now + dt.timedelta(days=7), invited_by=owner,
    )
    created += [invite, await InviteDatabase.create(invite=invite, database=trade)]
    outsider = await factories.create_user(factories.unique_email("requester"))
    both = await factories.create_user(factories.unique_email("both"))
    admin_of_both = await factories.create_user(factories.unique_email("admin-of-both"))
    created += [
        outsider, both, admin_of_both,
        await factories.add_member(romashka, admin_of_both, Role.ADMIN),
        await factories.add_member(vasilek, admin_of_both, Role.ADMIN),
        await Session.create(organization=romashka, database=accounting, user=both, user_name="Иванова (совм.)",
                             client_kind=ClientKind.THIN_CLIENT, host="PC-BUH-03", started_at=now - dt.timedelta(minutes=3)),
        await JoinRequest.create(organization=romashka, user=outsider, position="Юрист"),
        await JoinRequest.create(organization=vasilek, user=user, position="Менеджер"),
        await factories.add_member(romashka, both, Role.ACCOUNTANT),
        await factories.add_member(vasilek, both, Role.USER),
        await AuditEntry.create(organization=romashka, actor=owner, action="matrix.walk", object_type="Organization",
                                object_id=str(romashka.id), details={}),
        await AuditEntry.create(organization=vasilek, action="matrix.walk", object_type="Organization", details={}),
        await Document.create(organization=romashka, kind=DocumentKind.INVOICE, number=f"M-{uuid.uuid4().hex[:8]}",
                              issued_on=_today(), period=_today().strftime("%Y-%m"), amount="100.00",
                              visible_from=_today() + dt.timedelta(days=40)),
        await UpdateRun.create(organization=romashka, database=trade, status=UpdateRunStatus.CANCELLED,
                               scheduled_for=now - dt.timedelta(days=3), message="matrix"),
        await Session.create(organization=romashka, database=trade, user=user, user_name="Петрова",
                             client_kind=ClientKind.WEB_CLIENT, host="PC-SALES-02", started_at=now - dt.timedelta(hours=30),
                             ended_at=now - dt.timedelta(hours=29), status=SessionStatus.ENDED),
    ]
    subscription = await CloudSubscription.filter(organization_id=romashka.id).order_by("created_at").first()
    created.append(await SubscriptionExtension.create(
        subscription=subscription, period_starts_on=subscription.starts_on, extra_sessions=2, extra_databases=8,
        starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(days=7),
    ))
    # tickets of the person in both organizations (an ACCOUNTANT's own in Romashka, a USER's in Vasilek), a file on each
    for organization in (romashka, vasilek):
        ticket = await ticket_resolvers.seed(organization.id, both, "matrix", [(both.full_name, "matrix", False, TicketStatus.OPEN, now)])
        attachment = await TicketAttachment.create(
            ticket=ticket, organization_id=organization.id, uploaded_by=both, filename="matrix.pdf", content_type="application/pdf", size=5,
        )
        await TicketAttachmentFile.create(attachment=attachment, content=b"%PDF-")
        created.append(ticket)
    # an integrator's API token in each (issue 21): seen by their OWNER and ADMIN through Organization.apiTokens
    for organization, maker in ((romashka, owner), (vasilek, admin_of_both)):
        token = await ProgramToken.create(
            kind=TokenKind.INTEGRATOR, name=f"{organization.id}/matrix", token_hash=uuid.uuid4().hex * 2, scopes=["billing:read"],
            expires_at=now + dt.timedelta(days=7), created_by=maker,
        )
        await ProgramTokenOrganization.create(token=token, organization=organization)
        created.append(token)
    vasilek_db = await Database.filter(organization_id=vasilek.id).first()
    # One cluster holding a database of each: what one sees of it must not open the other's.
    cluster = await clusters.add(f"matrix-{uuid.uuid4().hex[:8]}")
    await clusters.place(trade, cluster, "trade")
    await clusters.place(vasilek_db, cluster, "vasilek")
    created.append(await UpdateRun.create(organization=vasilek, database=vasilek_db, status=UpdateRunStatus.CANCELLED,
                                          scheduled_for=now - dt.timedelta(days=2), message="matrix"))
    yield {"romashka": romashka, "vasilek": vasilek, "both": both, "admin-of-both": admin_of_both,
           "accounting": accounting, "trade": trade}
    for row in reversed(created):
        await row.delete()
    await clusters.place(trade, None, None)
    await clusters.place(vasilek_db, None, None)
    await cluster.delete()


@pytest_asyncio.fixture(scope="module")
async def world(app, gql, settings, scenery) -> World:
    schema = await ServedSchema.fetch(gql)
    organizations = {ROMASHKA_INN: scenery["romashka"].id, VASILEK_INN: scenery["vasilek"].id}
    transport = httpx.ASGITransport(app=app, client=("198.51.100.78", 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://kabinet.test") as sign_in_client:
        yield World(schema, Walker(schema, settings.max_query_depth), Scopes(), organizations,
                    await sample_ids(list(organizations.values())), sign_in_client)


def test_every_type_a_root_reaches_has_a_rule(world):
    """A new object type needs a rule in RULES before the matrix can say who may see it."""
    schema = world.schema
    reachable, todo = set(), [schema.query_type, schema.subscription_type]
    while todo:
        name = todo.pop()
        for field_ in schema.fields(name).values():
            for concrete in schema.concrete(schema.target(field_)) if schema.kind(schema.target(field_)) not in ("SCALAR", "ENUM") else []:
                if concrete not in reachable and not schema.is_wrapper(concrete):
                    reachable.add(concrete)
                    todo.append(concrete)
    reachable -= {schema.query_type, schema.subscription_type}
    assert reachable - RULES.keys() == set(), "types without a rule"
    assert reachable >= {"Organization", "Database", "Session", "User", "Membership", "Charge"}


# the demo users, and two who belong to both organizations (they are made by `scenery`)
VIEWERS = [*DEMO_VIEWERS, "both", "admin-of-both"]


async def sign_in(gql: Any, scenery: dict, who: str) -> str:
    """The e-mail of a viewer, signed in."""
    if who not in scenery:
        return who
    email = scenery[who].email
    if email not in gql.tokens:
        await gql.token_for_password(email, factories.PASSWORD)
    return email


async def run_matrix(gql: Any, world: World, email: str, password: str, verdict: Verdict) -> Checker:
    viewer = await load_viewer(email)
    checker = Checker(world.schema, world.scopes, viewer, verdict)
    for root in root_calls(world, world.schema.query_type):
        await run_paths(gql, world, checker, root, world.walker.root_paths(root, world.schema.query_type))
    # a mutation payload: `login` answers the user it signs in, and all that user's graph below
    login = RootCall("login", f'(input: {{login: "{email}", password: "{password}"}})', ("AuthPayload",))
    paths = world.walker.root_paths(login, world.schema.mutation_type, LEVELS + 1)
    await run_paths(gql, world, checker, login, paths, operation="mutation", http=world.sign_in_client)
    await check_node_lookups(gql, world, checker, sorted(world.sampled() | verdict.seen_ids), found=False)
    return checker


@pytest.fixture(autouse=True)
def deep_walks_allowed(settings, monkeypatch):
    """The matrix walks LEVELS objects deep through plain lists (each estimated at 100 items): it asks
    who sees what, not how much; the cost limit has tests of its own (tests/test_query_limits.py)."""
    monkeypatch.setattr(settings, "max_query_cost", 1_000_000_000)


@pytest.mark.parametrize("who", VIEWERS)
async def test_every_object_on_every_path_follows_the_role_table(gql, world, scenery, who):
    email = await sign_in(gql, scenery, who)
    verdict = Verdict()
    await run_matrix(gql, world, email, factories.PASSWORD if who in scenery else DEMO_PASSWORD, verdict)
    assert verdict.answered > 0
    assert not verdict.violations, verdict.report()
    if who in ("owner@romashka.example",):
        # the walk reached every kind of object the owner may see: it is a walk, not a formality
        expected = set(RULES) - {"ModeratedOrganization", "Claimant", "DeliveryFailure", "RefusedRecord", "WaitingDocuments", "StaffInvitation", "SessionListUpdate", "SessionEvent", "OrganizationDataChange", "TicketChange", "DatabaseLock", "UserError"}
        assert expected - verdict.seen_types[email] == set()


@pytest.mark.parametrize("who", VIEWERS)
async def test_node_finds_every_object_the_role_table_shows(gql, world, scenery, who):
    """The other side of the table: node(id:) answers what the viewer may see, whichever path showed
    it elsewhere (e.g. the user behind a join request the viewer decides on)."""
    email = await sign_in(gql, scenery, who)
    verdict = Verdict()
    checker = Checker(world.schema, world.scopes, await load_viewer(email), verdict)
    await check_node_lookups(gql, world, checker, sorted(world.sampled()), found=True)
    assert verdict.answered > 0
    assert not verdict.violations, verdict.report()


# ---------------------------------------------------------------- the same over WebSocket subscriptions


@dataclass
class Operation:
    """One subscription of one viewer: its document, what came, and whether it is over."""

    field: str
    organization: uuid.UUID
    query: str
    markers: set[str] | None  # the global ids whose events end the wait (None: the first message does)
    messages: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)  # errors that ended it
    done: bool = False

    def take(self, message: dict) -> None:
        kind, payload = message["type"], message.get("payload")
        if kind in ("next", "data"):
            self.messages.append(payload)
            if payload.get("errors") and not payload.get("data"):
                self.refused += payload["errors"]
                self.done = True
            elif self.markers is None or any(marker in str(payload.get("data")) for marker in self.markers):
                self.done = True
        elif kind == "error":
            self.refused += payload if isinstance(payload, list) else [payload]
            self.messages.append({"data": None, "errors": self.refused})
            self.done = True
        elif kind == "complete":
            self.done = True


async def pump(socket: GraphQLSocket, operations: dict[str, Operation], until: Callable[[], bool], timeout: float = 15) -> None:
    """Hand every message of a socket to its operation until `until()`; a socket that falls silent
    first leaves the operations not done (the caller reports them)."""
    try:
        while not until():
            message = await socket.receive(timeout=timeout)
            if message.get("id") in operations:
                operations[message["id"]].take(message)
    except TimeoutError:
        pass


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_live_views_follow_the_role_table(gql, app, live_server, world, scenery, protocol):
    """`sessions`, `sessionEvents`, `updateRuns` and `organizationData` of both organizations, every path of their payload
    (a session's user's memberships, its database's runs…), as every viewer: refused with FORBIDDEN
    for an ACCOUNTANT, as absent for another organization, and every payload by the role table."""
    schema, subscription = world.schema, world.schema.subscription_type
    romashka, vasilek, both = scenery["romashka"], scenery["vasilek"], scenery["both"]
    user = await User.get(email="user@romashka.example")
    vasilek_db = await Database.filter(organization_id=vasilek.id).first()
    markers: dict[tuple[str, uuid.UUID], set[str]] = {
        (name, org.id): set() for name in ("sessionEvents", "updateRuns", "organizationData", "tickets") for org in (romashka, vasilek)
    }
    written: list[Any] = []

    async def happen() -> None:
        """Per organization, what only its staff may see, then a marker that every viewer who may watch
        sees: sessions start, runs change; announced as the workers announce them."""
        now = dt.datetime.now(dt.timezone.utc)
        sessions = [
            Session(organization=romashka, database=scenery["trade"], user=None, user_name="Кладовщик"),
            Session(organization=romashka, database=scenery["accounting"], user=user, user_name="Петрова"),
            Session(organization=vasilek, database=vasilek_db, user=both, user_name="Совместитель"),
        ]
        runs = [
            UpdateRun(organization=romashka, database=scenery["trade"]),
            UpdateRun(organization=romashka, database=scenery["accounting"]),
            UpdateRun(organization=vasilek, database=vasilek_db),
        ]
        announcements = PendingAnnouncements()
        for row in sessions:
            row.id, row.client_kind, row.started_at, row.status = uuid.uuid4(), ClientKind.RDP, now, SessionStatus.ACTIVE
            await row.save(force_create=True)
            await announcements.record(row.organization_id, SESSIONS, "STARTED", session_payload(row))
        for row in runs:
            row.id, row.status, row.scheduled_for, row.message = uuid.uuid4(), UpdateRunStatus.CANCELLED, now, "matrix"
            await row.save(force_create=True)
            await announcements.record(row.organization_id, UPDATES, "CHANGED", run_payload(row))
        written.extend([*sessions, *runs])
        markers[("sessionEvents", romashka.id)].add(to_global_id("Session", sessions[1].id))
        markers[("sessionEvents", vasilek.id)].add(to_global_id("Session", sessions[2].id))
        markers[("updateRuns", romashka.id)].add(to_global_id("UpdateRun", runs[1].id))
        markers[("updateRuns", vasilek.id)].add(to_global_id("UpdateRun", runs[2].id))
        for ticket in await SupportTicket.filter(organization_id__in=[romashka.id, vasilek.id]):
            # every ticket changes: each viewer receives those they see (each has one of their own, or sees all)
            await announcements.record(ticket.organization_id, TICKETS, "STATUS_CHANGED", {
                "ticket_id": str(ticket.id), "author_id": str(ticket.author_id) if ticket.author_id else None,
                "status": ticket.status.value, "comment_id": None,
            })
            markers[("tickets", ticket.organization_id)].add(to_global_id("Ticket", ticket.id))
        for organization in (romashka, vasilek):  # the provider changed its data: every member is told
            await announcements.record(organization.id, DATA, "CHANGED", {"areas": ["balance", "documents"]})
            markers[("organizationData", organization.id)].add("BALANCE")
        await announcements.announce(app.state.broadcast)

    grant = await DatabaseGrant.create(membership=await Membership.get(user_id=both.id, organization_id=vasilek.id), database=vasilek_db)
    # the ADMIN of both organizations subscribes right before the ADMIN of Romashka only, with the same documents
    emails = [await sign_in(gql, scenery, who) for who in sorted(VIEWERS, key=lambda who: who != "admin-of-both")]
    verdict = Verdict()
    sockets: dict[str, tuple[GraphQLSocket, dict[str, Operation]]] = {}
    try:
        for email in emails:
            socket = GraphQLSocket(live_server, protocol)
            assert (await socket.connect(await gql.token_for(email)))["type"] == "connection_ack"
            operations: dict[str, Operation] = {}
            sockets[email] = (socket, operations)
            # `sessions` last: its first message comes once it is live, the others' before it
            for name in sorted(schema.fields(subscription), key=lambda n: n == "sessions"):
                field_ = schema.fields(subscription)[name]
                for organization in (romashka, vasilek):
                    root = RootCall(name, f'(organizationId: "{to_global_id("Organization", organization.id)}")',
                                    tuple(schema.concrete(schema.target(field_))))
                    # one level more: a live view's payload is a container (the list and the event)
                    paths = world.walker.root_paths(root, subscription, LEVELS + 1)
                    for start in range(0, len(paths), PATHS_PER_QUERY):
                        query = world.walker.query(root, paths[start:start + PATHS_PER_QUERY], operation="subscription")
                        operation_id = await socket.subscribe(query)
                        operations[operation_id] = Operation(name, organization.id, query, markers.get((name, organization.id)))
        for socket, operations in sockets.values():
            firsts = [op for op in operations.values() if op.markers is None]
            await pump(socket, operations, lambda: all(op.messages for op in firsts))
        # sessionEvents and updateRuns send nothing first, so nothing tells when they are live: what
        # happens again (with new markers) reaches those that joined the hub late
        for _round in range(4):
            await asyncio.sleep(0.3)
            await happen()
            for socket, operations in sockets.values():
                await pump(socket, operations, lambda: all(op.done for op in operations.values()), timeout=5)
            if all(op.done for _, operations in sockets.values() for op in operations.values()):
                break

        for email, (socket, operations) in sockets.items():
            viewer = await load_viewer(email)
            checker = Checker(schema, world.scopes, viewer, verdict, frozenset({"FORBIDDEN", "NOT_FOUND"}))
            for operation in operations.values():
                role = viewer.role_in(operation.organization)
                codes = {(e.get("extensions") or {}).get("code") for e in operation.refused}
                if role is None and not (operation.refused and not any(m.get("data") for m in operation.messages)):
                    checker.fail(f"{operation.field} of another organization is not refused as absent", str(operation.messages)[:300])
                # an ACCOUNTANT sees no cloud, but every member may follow the organization's data
                everyone = ("organizationData", "tickets")
                watches = (OWNER, ADMIN, USER, ACCOUNTANT) if operation.field in everyone else (OWNER, ADMIN, USER)
                if role == ACCOUNTANT and role not in watches and codes != {"FORBIDDEN"}:
                    checker.fail(f"{operation.field} is not refused with FORBIDDEN for an ACCOUNTANT", str(operation.messages)[:300])
                if role in watches and (operation.refused or not operation.done):
                    checker.fail(f"{operation.field} did not deliver to {_role(role)}", f"{operation.refused} {len(operation.messages)} messages")
                for payload in operation.messages:
                    await checker.check(payload, operation.query, subscription, Scope(organization=operation.organization))
    finally:
        for socket, _ in sockets.values():
            await socket.close()
        for row in [*written, grant]:
            await row.__class__.filter(id=row.id).delete()
    assert not verdict.violations, verdict.report()
