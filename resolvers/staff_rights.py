"""Who acts with the provider's staff rights: a staff member signed in to the GraphQL API, or a
service account whose token has the `staff` scope (the provider HTTP API). Moderation, releases and
the staff desk ask here, so both doors follow one rule (`permissions.has_staff_rights`), and the
provider's own audit names whoever acted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from models.identity import User
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, Refusal, UserFacingError, unauthenticated
from resolvers.permissions import has_staff_rights

if TYPE_CHECKING:
    from resolvers.provider.records import ProviderActor

Caller = Union[RequestContext, "ProviderActor"]


@dataclass(frozen=True)
class StaffMember:
    """The caller, with staff rights: as the provider's audit names it."""

    kind: str  # STAFF (a user) or SERVICE (a service account): resolvers/provider/audit.py ActorKind
    name: str  # the staff member's e-mail, the service account's name
    user: User | None = None

    async def audit(self, action: str, target: str | None, details: dict[str, Any] | None = None) -> None:
        """The provider's own audit of what was done with staff rights, in the caller's transaction.
        (Imported here: the provider package imports its entity modules, which import moderation.)"""
        from resolvers.provider.audit import record_action

        await record_action(self.kind, self.name, action, target, details)


async def staff_member(caller: Caller) -> StaffMember | None:
    """The caller as a staff member, or None when it has no staff rights. A user is read afresh, so a
    disabled staff member loses the rights at their next request."""
    if isinstance(caller, RequestContext):
        viewer = caller.require_viewer()
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
