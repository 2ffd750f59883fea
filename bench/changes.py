"""Session changes made as the cluster worker makes them (workers/cluster.py), by the same functions
(resolvers/cloud/sessions.py): the row and its event in one transaction, then the notice through the
broker. The commit time is read right after the transaction commits, by the wall clock the
subscriber processes also read."""

from __future__ import annotations

import time
import uuid

from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from resolvers.common.context import SystemActor
from models.cloud import ClientKind, Database, Session
from resolvers.cloud import sessions
from resolvers.common.unit_of_work import announce_committed
from foundation.ids import to_global_id


class SessionChanges:
    """Alternately starts a session and ends the one it started: the list keeps its size.

    With `owners` ((user pk, database pk) pairs) each started session is the next owner's, in their
    database, in turn: a USER sees only their own sessions, so each change is one person's."""

    def __init__(self, broadcast, organization_pk: uuid.UUID,
                 owners: list[tuple[uuid.UUID, uuid.UUID]] | None = None) -> None:
        self.broadcast = broadcast
        self.organization_pk = organization_pk
        self.open: list[Session] = []
        self.database_pk: uuid.UUID | None = None
        self.owners = owners or []
        self.turn = 0

    async def next(self) -> tuple[str, float]:
        """Make one change: (its key "KIND:session global id", wall-clock commit time)."""
        if self.database_pk is None:
            self.database_pk = (await Database.filter(organization_id=self.organization_pk).order_by("name").first()).id
        actor = SystemActor("bench")
        if self.open:
            session = self.open.pop()
            async with in_transaction():
                await sessions.ended(actor, session, utcnow())
            kind = "ENDED"
        else:
            user_pk, database_pk = None, self.database_pk
            if self.owners:
                user_pk, database_pk = self.owners[self.turn % len(self.owners)]
                self.turn += 1
            async with in_transaction():
                session = await sessions.start(
                    actor, organization_id=self.organization_pk, database_id=database_pk, user_id=user_pk,
                    user_name="Бенч-сеанс", client_kind=ClientKind.WEB_CLIENT, host="PC-BENCH", started_at=utcnow(),
                )
            self.open.append(session)
            kind = "STARTED"
        committed = time.time()
        await announce_committed(actor.announcements, self.broadcast)
        return f"{kind}:{to_global_id('Session', session.id)}", committed


class SpreadChanges:
    """Session changes spread over many organizations (W4 spread), each in the next organization of a
    stride through them: a session started there, or the one started there before ended. In turn it
    is one of the organization's USERs' own (in their granted database) or nobody's in particular.

    `next()` gives, besides the key and commit time, who must receive it: (organization index, the
    USER whose session it is or None)."""

    def __init__(self, broadcast, organizations: list[dict]) -> None:
        self.broadcast = broadcast
        self.organizations = organizations
        self.open: dict[int, tuple[Session, uuid.UUID | None]] = {}
        self.turn = 0
        # a stride coprime with the count: successive changes land far apart, every organization in turn
        self.stride = next(s for s in (7919, 104729, 1) if len(organizations) % s) if len(organizations) > 1 else 1

    async def next(self) -> tuple[str, float, int, uuid.UUID | None]:
        index = (self.turn * self.stride) % len(self.organizations)
        self.turn += 1
        org = self.organizations[index]
        actor = SystemActor("bench")
        if index in self.open:
            session, owner = self.open.pop(index)
            async with in_transaction():
                await sessions.ended(actor, session, utcnow())
            kind = "ENDED"
        else:
            owner, database_pk = (org["users"][self.turn % len(org["users"])] if self.turn % 3
                                  else (None, org["databases"][self.turn % len(org["databases"])]))
            async with in_transaction():
                session = await sessions.start(
                    actor, organization_id=org["organization"], database_id=database_pk, user_id=owner,
                    user_name="Бенч-сеанс", client_kind=ClientKind.WEB_CLIENT, host="PC-BENCH", started_at=utcnow(),
                )
            self.open[index] = (session, owner)
            kind = "STARTED"
        committed = time.time()
        await announce_committed(actor.announcements, self.broadcast)
        return f"{kind}:{to_global_id('Session', session.id)}", committed, index, owner
