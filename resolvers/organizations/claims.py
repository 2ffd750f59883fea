"""Adding an organization by its INN: a new INN makes the caller its OWNER, awaiting the provider's
moderation (moderation.py); an INN whose customer has an owner asks its owner and admins to let the
caller in (join_requests.py); the provider's organization nobody owns is claimed beside it; a
REJECTED claim may be made again."""

from __future__ import annotations

from dataclasses import dataclass

from models.identity import User
from models.organizations import (
    JoinRequest, JoinRequestStatus, Membership, ModerationStatus, Organization, OrganizationKind, Role,
)
from resolvers.common import audit
from resolvers.organizations import invitations
from resolvers.organizations import join_requests
from resolvers.organizations import moderation
from resolvers.organizations import removals
from resolvers.common import validation
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.logins import viewer_user
from resolvers.organizations.subscriber_codes import new_organization
from resolvers.common import notifications


@dataclass
class AddedOrganization:
    """What `add_organization` did: created (or re-submitted) an organization, or asked to join one."""

    organization: Organization | None = None
    join_request: JoinRequest | None = None


def _default_name(kind: OrganizationKind, inn: str) -> str:
    return {
        OrganizationKind.LEGAL_ENTITY: f"Организация, ИНН {inn}",
        OrganizationKind.SOLE_PROPRIETOR: f"ИП, ИНН {inn}",
        OrganizationKind.INDIVIDUAL: f"Физическое лицо, ИНН {inn}",
    }[kind]


async def _reload_memberships(ctx: RequestContext) -> None:
    ctx.forget_memberships()
    await ctx.memberships()


async def add_organization(
    ctx: RequestContext, inn: str, kind: OrganizationKind, name: str | None, position: str
) -> AddedOrganization:
    """A new INN: the organization, the caller its OWNER, moderation PENDING — APPROVED at once for a
    known contact (moderation.py `is_known_contact`). An INN whose customer has an owner: a join
    request to its owner and admins. The provider's organization nobody owns yet: a known contact
    becomes its OWNER (`moderation.make_owner`); anyone else's claim stands beside it, PENDING, for
    staff to approve (it then folds into it) or reject — the provider's data never reaches a claim.

    A REJECTED claim is not blocked for ever: its owner may submit it again, and anyone else who
    adds the INN takes it over (the rejected claim's members lose it).
    """
    user = await viewer_user(ctx)
    inn = validation.inn(inn, "inn", legal_entity=kind == OrganizationKind.LEGAL_ENTITY)
    position = validation.non_empty(position, "position", "Position")
    if name is not None and name.strip():
        name = validation.non_empty(name, "name", "Name", max_length=300)
    else:
        name = None
    for _ in range(2):  # once more when someone added this INN a moment ago
        customer, claim = await moderation.customer_of_inn(inn), await moderation.claim_of_inn(inn)
        if customer is not None and await Membership.exists(organization_id=customer.id, user_id=user.id):
            raise UserFacingError(ErrorCode.CONFLICT, "You already belong to this organization.", "inn")
        if customer is not None and await Membership.exists(organization_id=customer.id, role=Role.OWNER):
            return AddedOrganization(join_request=await _ask_to_join(ctx, user, customer, position))
        if claim is not None:
            membership = await Membership.get_or_none(organization_id=claim.id, user_id=user.id)
            if claim.moderation_status == ModerationStatus.REJECTED and (membership is None or membership.role == Role.OWNER):
                await _within_pending_claims(user)
                return AddedOrganization(organization=await _claim_again(ctx, user, claim, name, kind, position))
            if membership is not None:
                raise UserFacingError(ErrorCode.CONFLICT, "You already belong to this organization.", "inn")
        known = await moderation.is_known_contact(user, inn)
        if customer is not None and known:
            organization = await moderation.make_owner(ctx, customer, user.id, position=position, details={"by": "known contact"}, field="inn")
            await _reload_memberships(ctx)
            return AddedOrganization(organization=organization)
        if claim is not None and not known:  # PENDING, someone else's
            if customer is not None:
                raise UserFacingError(
                    ErrorCode.CONFLICT,
                    "Someone has already claimed this organization and the provider is checking the claim. Only a person "
                    "whose confirmed phone the provider knows for this INN can become its owner at once: ask your "
                    "provider to add your phone as a contact, or to invite you.",
                    "inn",
                )
            return AddedOrganization(join_request=await _ask_to_join(ctx, user, claim, position))
        status = ModerationStatus.APPROVED if known else ModerationStatus.PENDING  # known: the INN has no customer here
        if status == ModerationStatus.PENDING:
            await _within_pending_claims(user)
        organization = await new_organization(name or _default_name(kind, inn), inn, kind, status)
        if organization is None:
            continue
        await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
        await audit.record(
            ctx, "organization.added", organization_id=organization.id, object_type="Organization",
            object_id=organization.id,
            details={"inn": inn, "moderation": status.value, **({"beside": str(customer.id)} if customer else {})},
        )
        if status == ModerationStatus.PENDING:
            await notifications.moderation_waiting(ctx, organization)
        await _reload_memberships(ctx)
        return AddedOrganization(organization=organization)
    raise UserFacingError(ErrorCode.CONFLICT, "Someone added this INN a moment ago: try again.", "inn")


PENDING_CLAIMS_PER_USER = 5  # organizations one person has awaiting moderation at once: each one mails every staff member


async def _within_pending_claims(user: User) -> None:
    """LIMIT_EXCEEDED when the user owns PENDING_CLAIMS_PER_USER organizations awaiting moderation: a
    valid INN is easy to make up, and each claim tells every staff member (MODERATION_WAITING)."""
    waiting = await Membership.filter(
        user_id=user.id, role=Role.OWNER, organization__moderation_status=ModerationStatus.PENDING,
    ).count()
    if waiting >= PENDING_CLAIMS_PER_USER:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED,
            f"You have {waiting} organizations awaiting the provider's check, the most at once: wait for its answer.",
            "inn",
        )


async def _ask_to_join(ctx: RequestContext, user: User, organization: Organization, position: str) -> JoinRequest:
    if await JoinRequest.exists(organization_id=organization.id, user_id=user.id, status=JoinRequestStatus.PENDING):
        raise UserFacingError(
            ErrorCode.CONFLICT, "You have already asked to join this organization: wait for its administrator.", "inn",
        )
    return await join_requests.ask_to_join(ctx, user, organization, position)


async def _claim_again(
    ctx: RequestContext, user: User, organization: Organization, name: str | None, kind: OrganizationKind, position: str
) -> Organization:
    """A REJECTED organization goes back to moderation, owned by the caller."""
    previous_owners = await Membership.filter(organization_id=organization.id, role=Role.OWNER).values_list("user_id", flat=True)
    if user.id not in previous_owners:
        for membership in await Membership.filter(organization_id=organization.id):
            await removals.end_membership(ctx, membership, "member.remove")
        await join_requests.close_pending(organization.id)
        await invitations.withdraw(organization.id)
        await Membership.create(organization=organization, user=user, role=Role.OWNER, position=position)
    else:
        await Membership.filter(organization_id=organization.id, user_id=user.id).update(position=position)
    organization.moderation_status = ModerationStatus.PENDING
    organization.moderation_note = None
    organization.kind = kind
    if name:
        organization.name = name
    await organization.save(update_fields=["moderation_status", "moderation_note", "kind", "name"])
    await audit.record(
        ctx, "organization.resubmitted", organization_id=organization.id, object_type="Organization",
        object_id=organization.id,
        details={"moderation": organization.moderation_status.value, "previous_owners": [str(u) for u in previous_owners]},
    )
    if await moderation.is_known_contact(user, organization.inn):  # the customer now: approved, or folded into the provider's
        organization = await moderation.accept_claim(ctx, organization, {"by": "known contact"}, field="inn")
    else:
        await notifications.moderation_waiting(ctx, organization)
    await _reload_memberships(ctx)
    return organization
