"""The role table of the contract README, as data, and the one function that reads it."""

from __future__ import annotations

from enum import Enum, auto

from models.organizations import Role


class Permission(Enum):
    SEE_ORGANIZATION = auto()  # the organization, its products, contracts and cloud subscription
    SEE_FINANCE = auto()  # balance, transactions, charges, documents
    SEE_MEMBERS = auto()  # members and invites
    MANAGE_MEMBERS = auto()  # invite, revoke invites, change roles, remove members
    SEE_ALL_SESSIONS = auto()  # see and terminate any session, or all
    SEE_OWN_SESSIONS = auto()  # see and terminate one's own sessions only
    SEE_ALL_DATABASES = auto()
    SEE_GRANTED_DATABASES = auto()  # only the databases granted to the member
    MANAGE_UPDATES = auto()  # change update schedules, skip a run
    EXTEND_SUBSCRIPTION = auto()
    SEE_AUDIT_LOG = auto()
    TRANSFER_OWNERSHIP = auto()  # hand the organization to another member (the owner becomes an admin)


P = Permission
_STAFF = frozenset({
    P.SEE_ORGANIZATION, P.SEE_FINANCE, P.SEE_MEMBERS, P.MANAGE_MEMBERS, P.SEE_ALL_SESSIONS,
    P.SEE_ALL_DATABASES, P.MANAGE_UPDATES, P.SEE_AUDIT_LOG,
})
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: _STAFF | {P.EXTEND_SUBSCRIPTION, P.TRANSFER_OWNERSHIP},
    Role.ADMIN: _STAFF,
    Role.ACCOUNTANT: frozenset({P.SEE_ORGANIZATION, P.SEE_FINANCE, P.SEE_MEMBERS}),
    Role.USER: frozenset({P.SEE_ORGANIZATION, P.SEE_OWN_SESSIONS, P.SEE_GRANTED_DATABASES}),
}


def role_may(role: Role | None, permission: Permission) -> bool:
    """May a member with this role (None: not a member) do this?"""
    return role is not None and permission in ROLE_PERMISSIONS[role]
