"""The provider's moderation of organizations: a newly added INN is an unchecked claim (PENDING)
until the provider's staff approve or reject it; a known contact's is approved on adding."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from tortoise.expressions import Q

from models.identity import User
from models.organizations import KnownContact, Membership, ModerationStatus, Organization, Role
from resolvers import audit, outbox, validation
from resolvers.common import not_found, related_one
from resolvers.context import Actor, RequestContext
from resolvers.errors import ErrorCode, Refusal, UserFacingError
from resolvers.pagination import Ordering, Page, PageRequest, load_pages
from resolvers.staff_rights import Caller, StaffMember, staff_for_change, staff_for_reading

MODERATION_ORDER = Ordering(("created_at",))
STAFF_ONLY = "Only the provider's staff moderate organizations."


async def status_on_adding(user: User, inn: str) -> ModerationStatus:
    """APPROVED at once when the caller's verified phone is one the provider knows for this INN."""
    if user.phone and user.phone_verified and await KnownContact.exists(inn=inn, phone=user.phone):
        return ModerationStatus.APPROVED
    return ModerationStatus.PENDING


def status_named(name: str, field: str) -> ModerationStatus | None:
    """A moderation status by its name (any case), or None for ALL; INVALID on `field` otherwise."""
    name = name.strip().upper()
    if name == "ALL":
        return None
    if name not in ModerationStatus.__members__:
        raise Refusal("INVALID", f"`{field}` is one of {', '.join(ModerationStatus.__members__)} or ALL.")
    return ModerationStatus(name)


async def _staff(caller: Caller) -> StaffMember:
    """The caller with staff rights (a staff member, or a service token with the `staff` scope);
    FORBIDDEN (a mutation's userError) for anyone else."""
    return await staff_for_change(caller, STAFF_ONLY)


async def organization_id_by_inn(caller: Caller, inn: str, kpp: str | None = None) -> uuid.UUID:
    """Staff (the provider HTTP API names organizations as its accounting does): the organization of
    this INN, and of this KPP when one is given; NOT_FOUND when none is."""
    await _staff(caller)
    inn, kpp = (inn or "").strip(), (kpp or "").strip() or None
    if not inn:
        raise UserFacingError(ErrorCode.INVALID, "Name the organization by its INN.", "inn")
    if not (inn.isascii() and inn.isdigit() and len(inn) in (10, 12)):
        raise UserFacingError(ErrorCode.INVALID, "An INN is 10 or 12 digits.", "inn")
    if kpp is not None and not (kpp.isascii() and kpp.isdigit() and len(kpp) == 9):
        raise UserFacingError(ErrorCode.INVALID, "A KPP is 9 digits.", "kpp")
    rows = await Organization.filter(inn=inn).values("id", "kpp")
    if kpp is not None:
        rows = [row for row in rows if row["kpp"] == kpp]
    if not rows:
        raise UserFacingError(ErrorCode.NOT_FOUND, f"No organization has the INN {inn}{f' and the KPP {kpp}' if kpp else ''}.", "inn")
    if len(rows) > 1:
        raise UserFacingError(ErrorCode.CONFLICT, f"Several organizations have the INN {inn}: name the KPP too.", "kpp")
    return rows[0]["id"]


async def _organization_to_moderate(organization_id: uuid.UUID) -> Organization:
    row = await Organization.filter(id=organization_id).select_for_update().first()
    if row is None:
        raise not_found("organization_id", "organization")
    return row


async def approve_organization(caller: Caller, organization_id: uuid.UUID) -> Organization:
    """Staff: PENDING (or REJECTED, on second thought) → APPROVED; also in the provider's own audit."""
    staff = await _staff(caller)
    organization = await _organization_to_moderate(organization_id)
    if organization.moderation_status == ModerationStatus.APPROVED:
        raise UserFacingError(ErrorCode.CONFLICT, "This organization is already approved.", "organization_id")
    await staff.audit(
        "organization.approve", f"INN {organization.inn}", {"organizationId": str(organization.id), "name": organization.name},
    )
    return await approve(caller, organization)


async def approve(actor: Actor, organization: Organization, details: dict[str, Any] | None = None) -> Organization:
    """The one way to APPROVED, whoever decides: staff (`approve_organization`), or the provider's
    accounting naming the organization its customer (resolvers/provider/catalog.py). The owner is
    told by e-mail. The caller holds the row (locked, or created in its transaction) and has checked
    it is not APPROVED yet."""
    organization.moderation_status, organization.moderation_note = ModerationStatus.APPROVED, None
    await organization.save(update_fields=["moderation_status", "moderation_note"])
    if owner_email := await _owner_email(organization):
        await outbox.email(
            owner_email, "organization_approved", organization_name=organization.name, inn=organization.inn,
            organization_code=organization.code,
        )
    await audit.record(
        actor, "organization.approved", organization_id=organization.id, object_type="Organization",
        object_id=organization.id, details=details,
    )
    return organization


async def approve_known_claims(actor: Actor, inns: Iterable[str], details: dict[str, Any] | None = None) -> list[Organization]:
    """A contact the provider came to know after the claim: the PENDING organizations of these INNs
    whose OWNER now passes the rule that approves at claim time (`status_on_adding`) are approved
    (`approve`), as they would have been had the contact been known then."""
    inns = sorted(set(inns))
    if not inns:
        return []
    approved = []
    for organization in await Organization.filter(inn__in=inns, moderation_status=ModerationStatus.PENDING).select_for_update():
        owner = await Membership.get_or_none(organization_id=organization.id, role=Role.OWNER)
        user = await User.get_or_none(id=owner.user_id) if owner else None
        if user is not None and await status_on_adding(user, organization.inn) == ModerationStatus.APPROVED:
            approved.append(await approve(actor, organization, details))
    return approved


async def reject_organization(caller: Caller, organization_id: uuid.UUID, reason: str) -> Organization:
    """PENDING → REJECTED with the reason the owner is given; an approved subscriber cannot be."""
    staff = await _staff(caller)
    reason = validation.non_empty(reason, "reason", "A reason", max_length=500)
    organization = await _organization_to_moderate(organization_id)
    if organization.moderation_status != ModerationStatus.PENDING:
        raise UserFacingError(
            ErrorCode.CONFLICT, f"Only a PENDING organization can be rejected; this one is {organization.moderation_status.value}.",
            "organization_id",
        )
    organization.moderation_status, organization.moderation_note = ModerationStatus.REJECTED, reason
    await organization.save(update_fields=["moderation_status", "moderation_note"])
    if owner_email := await _owner_email(organization):
        await outbox.email(owner_email, "organization_rejected", inn=organization.inn, reason=reason)
    await audit.record(
        caller, "organization.rejected", organization_id=organization.id, object_type="Organization",
        object_id=organization.id, details={"reason": reason},
    )
    await staff.audit(
        "organization.reject", f"INN {organization.inn}",
        {"organizationId": str(organization.id), "name": organization.name, "reason": reason},
    )
    return organization


async def _owner_email(organization: Organization) -> str | None:
    """Where the owner is told about moderation (None: no owner, or one without an e-mail)."""
    owner = await Membership.get_or_none(organization_id=organization.id, role=Role.OWNER)
    user = await User.get_or_none(id=owner.user_id) if owner else None
    return user.email if user else None


async def organizations_for_moderation(
    caller: Caller, status: ModerationStatus | None, page: PageRequest, *, with_total: bool = False
) -> Page:
    """Staff only (FORBIDDEN for anyone else): organizations by moderation status, oldest first."""
    await staff_for_reading(caller, STAFF_ONLY)
    pages = await load_pages(
        Organization, None, (), MODERATION_ORDER, page,
        filters=Q(moderation_status=status) if status else None, with_total=with_total,
    )
    return pages[None]


async def owners_of(ctx: RequestContext, organizations: list[Organization], args: dict[str, Any]) -> list:
    owners = await Membership.filter(organization_id__in=[o.id for o in organizations], role=Role.OWNER)
    users = await related_one(User, owners, "user_id")
    by_org = {m.organization_id: u for m, u in zip(owners, users)}
    return [by_org.get(o.id) for o in organizations]
