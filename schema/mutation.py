"""The Mutation root: every domain's mutations in one type.

Each domain's schema module defines its mutations as a class; a mutation's body is only its
business action, run by `schema.errors.transactional` in one transaction.
"""

from __future__ import annotations

import strawberry

from schema.api_tokens import ApiTokenMutations
from schema.cloud import CloudMutations
from schema.identity import IdentityMutations
from schema.notifications import NotificationMutations
from schema.members import OrganizationMutations
from schema.people import PeopleMutations
from schema.registration import RegistrationMutations
from schema.requisites import RequisitesMutations
from schema.staff_desk import StaffDeskMutations
from schema.tickets import TicketMutations
from schema.update_extras import OneOffUpdateMutations
from schema.updates import UpdatesMutations


@strawberry.type(description="Everything a cabinet user can change.")
class Mutation(IdentityMutations, OrganizationMutations, CloudMutations, UpdatesMutations, RegistrationMutations, StaffDeskMutations,
               PeopleMutations, NotificationMutations, RequisitesMutations, TicketMutations, OneOffUpdateMutations,
               ApiTokenMutations):
    pass
