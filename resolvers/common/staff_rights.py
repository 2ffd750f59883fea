"""Who acts with the provider's staff rights: a staff member signed in to the GraphQL API, a
service account whose token has the `staff` scope (the provider HTTP API), or the provider's
operator at the CLI. Moderation, releases and the staff desk ask here, so every door follows one rule
(`permissions.has_staff_rights`), and the provider's own audit names whoever acted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

from models.identity import User
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, Refusal, UserFacingError, unauthenticated
from resolvers.common.permissions import has_staff_rights


@runtime_checkable
class ScopedCaller(Protocol):
    """A caller whose scopes, not a sign-in, carry its rights: a service account by its token, or the
    operator at the CLI (resolvers/provider/records.py ProviderActor, which the domain need not know).
    The provider's audit names it by kind and name."""

    @property
    def kind(self) -> str: ...  # SERVICE or CLI: resolvers/provider/audit.py ActorKind

    @property
    def name(self) -> str: ...

    @property
    def scopes(self) -> frozenset[str]: ...


# Who asks for staff rights: a signed-in user, whose user row decides (read afresh), or a scoped
# caller, whose scopes decide. staff_member() tells the two apart.
Caller: TypeAlias = RequestContext | ScopedCaller


@dataclass(frozen=True)
class StaffMember:
    """The caller, with staff rights: as the provider's audit names it."""

    kind: str  # STAFF (a user), SERVICE (a service account), CLI: resolvers/provider/audit.py ActorKind
    name: str  # the staff member's e-mail, the service account's name, the operator's
    user: User | None = None

    async def audit(self, action: str, target: str | None, details: dict[str, Any] | None = None) -> None:
        """The provider's own audit of what was done with staff rights, in the caller's transaction.
        (Imported here: the provider package imports its entity modules, which import moderation.)"""
        from resolvers.provider.audit import record_action

        await record_action(self.kind, self.name, action, target, details)


async def staff_member(caller: Caller) -> StaffMember | None:
    """The caller as a staff member, or None when it has no staff rights. A signed-in user is read
    afresh, so a disabled staff member loses the rights at their next request; a scoped caller has
    them by the `staff` scope."""
    if isinstance(caller, RequestContext):
        viewer = caller.require_viewer()
        if viewer.grant is not None:  # an integrator's API token never carries the staff's rights
            return None
        user = await User.get_or_none(id=viewer.user_id)
        if user is None:
            raise unauthenticated()
        return StaffMember("STAFF", user.email or str(user.id), user) if has_staff_rights(user) else None
    if has_staff_rights(scopes=caller.scopes):
        return StaffMember(caller.kind, caller.name)
    return None


async def staff_for_change(caller: Caller, message: str) -> StaffMember:
    """A mutation's check: FORBIDDEN (a `userErrors` entry) for a caller without staff rights."""
    staff = await staff_member(caller)
    if staff is None:
        raise UserFacingError(ErrorCode.FORBIDDEN, message)
    return staff


async def staff_for_reading(caller: Caller, message: str) -> StaffMember:
    """A query's check: a FORBIDDEN error for a caller without staff rights."""
    staff = await staff_member(caller)
    if staff is None:
        raise Refusal("FORBIDDEN", message)
    return staff
