"""Who writes provider data (`ProviderActor`), and the areas of an organization its writes touch (`Area`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from events.log import DATA, PendingAnnouncements


DEFAULT_PROVIDER_TIMEZONE = "Europe/Moscow"


@dataclass
class ProviderActor:
    """Who writes provider data: a service account (by its token), a staff member, or the CLI run by
    the provider's operator. Events its writes record are announced after the batch commits."""

    kind: str  # SERVICE, STAFF, CLI
    name: str
    scopes: frozenset[str]
    timezone: str = DEFAULT_PROVIDER_TIMEZONE  # where a 1C date-time without an offset was written (settings)
    announcements: PendingAnnouncements = field(default_factory=PendingAnnouncements)
    viewer: None = None
    client_address: str | None = None
    changed: dict[uuid.UUID, set[str]] = field(default_factory=dict)  # organization → areas, this batch

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def touched(self, organization_id: uuid.UUID, area: Area | str) -> None:
        """Note that this batch changed the organization's `area`: one event per organization and
        batch says so, however many records it held."""
        self.changed.setdefault(organization_id, set()).add(Area(area).value)

    async def record_changes(self) -> None:
        """The batch's DATA events, one per organization it changed, in two statements for them all."""
        changed, self.changed = self.changed, {}
        await self.announcements.record_many(
            {organization_id: (DATA, "CHANGED", {"areas": sorted(areas)}) for organization_id, areas in changed.items()}
        )

    async def record_event(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        return await self.announcements.record(organization_id, topic, kind, payload)


class Area(str, Enum):
    """What a change of the provider's data touched, as the DATA event names it: a dashboard re-reads
    just those parts of the organization (`organizationData` subscription)."""

    ORGANIZATION = "organization"  # name, requisites
    PRODUCTS = "products"  # products and contracts
    BALANCE = "balance"  # ledger entries, prepaid services
    CHARGES = "charges"
    DOCUMENTS = "documents"
    CLOUD = "cloud"  # the cloud subscription, databases
    RELEASES = "releases"  # a new release of a configuration its databases run: their update plans


AREAS = tuple(area.value for area in Area)
