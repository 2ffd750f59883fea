"""Cloud rental: the subscription, databases and user sessions."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated

import strawberry

from models.cloud import ClientKind, CloudSubscription as CloudSubscriptionModel, Database as DatabaseModel, Session as SessionModel, SessionStatus
from models.cloud import SubscriptionExtension as SubscriptionExtensionModel
from resolvers.cloud import reads as resolvers
from foundation import clock
from resolvers.cloud import subscriptions as cloud_subscriptions
from resolvers.cloud import clusters
from resolvers.cloud import database_locks, sessions
from resolvers.updates import runs as run_resolvers
from resolvers.updates import schedules as schedule_resolvers
from resolvers.cloud.subscriptions import SubscriptionView
from resolvers.cloud.subscription_terms import ExtendBlockedReason
from schema.cloud_extras import SubscriptionExtensionTerms
from schema.batching import batched, expand, loaded
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.identity import User
from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from schema.relay import After, Connection, First, Node, connection_of
from schema.updates import UpdateRun, UpdateSchedule

described_enum(SessionStatus, "ACTIVE, TERMINATING (asked to end), ENDED (logged off), TERMINATED or REFUSED.", {
    "ACTIVE": "The user is working in the database.",
    "TERMINATING": "Someone asked to end it; the cluster will end it in a moment.",
    "ENDED": "The user logged off.",
    "TERMINATED": "Ended by the cluster on request.",
    "REFUSED": "Never admitted: the sessions limit was reached or the database was locked (`refusalReason`).",
})
described_enum(ClientKind, "How the user is connected: RDP, thin client, web client or mobile.", {
    "RDP": "Through a remote desktop (RemoteApp).",
    "THIN_CLIENT": "Through the 1C thin client.",
    "WEB_CLIENT": "Through a web browser.",
    "MOBILE": "Through the 1C mobile client.",
})


@strawberry.type(description="The temporary extension of a cloud subscription (+2 sessions, +8 databases for 7 days).")
class SubscriptionExtension:
    extra_sessions: int = strawberry.field(description="Sessions added to the limit.")
    extra_databases: int = strawberry.field(description="Databases added to the limit.")
    starts_at: dt.datetime = strawberry.field(description="When the extension began.")
    ends_at: dt.datetime = strawberry.field(description="When it ends.")
    period_starts_on: dt.date = strawberry.field(description="First day of the subscription period it was taken in.")

    @classmethod
    def from_model(cls, extension: SubscriptionExtensionModel) -> SubscriptionExtension:
        return cls(
            extra_sessions=extension.extra_sessions, extra_databases=extension.extra_databases,
            starts_at=extension.starts_at, ends_at=extension.ends_at, period_starts_on=extension.period_starts_on,
        )


@strawberry.type(description="A lock of new sessions («блокировка начала сеансов»): the cluster admits no new session in the window.")
class DatabaseLock:
    message: str = strawberry.field(description="What users turned away are told.")
    starts_at: dt.datetime = strawberry.field(description="When the lock begins.")
    ends_at: dt.datetime = strawberry.field(description="When it ends.")
    in_force: bool = strawberry.field(description="True while the window holds now.")

    @classmethod
    def from_model(cls, model: DatabaseModel) -> DatabaseLock | None:
        """The lock as it stands now: None once its window has passed (or none was set)."""
        if model.locked_until is None:
            return None
        now = clock.utcnow()
        if model.locked_until <= now:
            return None
        return cls(
            message=model.lock_message or "", starts_at=model.locked_from or model.locked_until,
            ends_at=model.locked_until, in_force=database_locks.lock_in_force(model, now),
        )


@strawberry.type(description="The organization's cloud rental: tariff, limits and period.")
class CloudSubscription(Node):
    tariff: str = strawberry.field(description="Tariff name.")
    sessions_limit: int = strawberry.field(description="Concurrent sessions allowed, the extension included while it lasts.")
    databases_limit: int = strawberry.field(description="Databases allowed, the extension included while it lasts.")
    starts_on: dt.date = strawberry.field(description="First day of the current period.")
    ends_on: dt.date = strawberry.field(description="Last day of the current period.")
    extension: SubscriptionExtension | None = strawberry.field(description="The extension in force, if any.")
    extensions: list[SubscriptionExtension] = strawberry.field(
        description="Every extension taken, newest first: at most one per period. The period rolls over each "
        "month when the provider sends no new one, and the extension is offered again."
    )
    can_extend: bool = strawberry.field(
        description="True when the caller may activate the one extension this subscription period allows."
    )
    extend_blocked_reason: ExtendBlockedReason | None = strawberry.field(
        description="Why `canExtend` is false (null when it is true); by the same rule `extendSubscription` applies."
    )
    extend_blocked_message: str | None = strawberry.field(
        description="The same, in Russian, for the cabinet to show beside a disabled «Расширить»."
    )
    next_extend_at: dt.datetime | None = strawberry.field(
        description="When this period's extension is taken: the start of the next period, when it is offered again "
        "(UTC midnight). Null while it is on offer."
    )
    extension_terms: SubscriptionExtensionTerms = strawberry.field(
        description="What an extension taken now would give (sessions, databases, days, until when, the limits while it "
        "lasts): what `extendSubscription` does, shown before it is confirmed."
    )
    model: strawberry.Private[CloudSubscriptionModel]

    @classmethod
    def from_view(cls, view: SubscriptionView) -> CloudSubscription:
        sub, ext = view.subscription, view.extension
        starts_on, ends_on = view.period
        return cls(
            id=to_global_id("CloudSubscription", sub.id), tariff=sub.tariff, sessions_limit=view.sessions_limit,
            databases_limit=view.databases_limit, starts_on=starts_on, ends_on=ends_on,
            extension=SubscriptionExtension.from_model(ext) if ext else None,
            extensions=[SubscriptionExtension.from_model(e) for e in view.history],
            can_extend=view.can_extend, model=sub,
            extend_blocked_reason=view.standing.blocked if view.standing else None,
            extend_blocked_message=view.standing.message if view.standing else None,
            next_extend_at=view.standing.next_extend_at if view.standing else None,
            extension_terms=SubscriptionExtensionTerms.of(view.terms()),
        )


@strawberry.type(description=(
    "A 1C cluster running the provider's databases, as its agent reports it. Whether the sessions shown are live "
    "depends on it: a disconnected cluster's list is the last one its agent reported."
))
class Cluster:
    name: str = strawberry.field(description="The cluster's name, as the provider's operator gave it.")
    connected: bool = strawberry.field(description=(
        "True while its agent reports the sessions (a report within KABINET_CLUSTER_STALE_SECONDS, 60 by default); "
        "false once none came for that long, or before the first."
    ))
    last_report_at: dt.datetime | None = strawberry.field(description="When the agent last reported the sessions; null: never.")
    model: strawberry.Private[clusters.ClusterOfDatabase]

    @classmethod
    def from_model(cls, view: clusters.ClusterOfDatabase) -> Cluster:
        return cls(name=view.cluster.name, connected=view.cluster.connected, last_report_at=view.cluster.last_report_at, model=view)


@strawberry.type(description="A user's connection to a cloud database.")
class Session(Node):
    user_name: str = strawberry.field(description="Name of the 1C user as the cluster reports it.")
    client_kind: ClientKind = strawberry.field(description="How the user is connected.")
    host: str | None = strawberry.field(description="Computer the user connects from.")
    started_at: dt.datetime = strawberry.field(description="When the session began.")
    ended_at: dt.datetime | None = strawberry.field(description="When it ended (ENDED or TERMINATED).")
    status: SessionStatus = strawberry.field(description="Where the session stands.")
    refusal_reason: str | None = strawberry.field(description=(
        "Why the cluster refused: a REFUSED session's admission, or, on an ACTIVE one, the last request to end it "
        "(asking again clears it); null otherwise."
    ))
    model: strawberry.Private[SessionModel]

    @classmethod
    def from_model(cls, model: SessionModel) -> Session:
        return cls(
            id=to_global_id("Session", model.id), user_name=model.user_name, client_kind=model.client_kind,
            host=model.host, started_at=model.started_at, ended_at=model.ended_at, status=model.status,
            refusal_reason=model.refusal_reason, model=model,
        )

    @strawberry.field(description="The database the session is in.")
    @batched(resolvers.database_of, to=lambda m: Database.from_model(m))
    def database(self, info: strawberry.Info) -> Database | None:
        return loaded(self, info)

    @strawberry.field(description="The cabinet user behind the session, when the cluster user is linked to one.")
    @batched(resolvers.user_of_session, to=User.from_model)
    def user(self, info: strawberry.Info) -> User | None:
        return loaded(self, info)


@strawberry.type(description="A cloud 1C database of the organization.")
class Database(Node):
    name: str = strawberry.field(description="Database name.")
    configuration: str = strawberry.field(description="1C configuration, e.g. «Бухгалтерия предприятия».")
    version: str = strawberry.field(description="Configuration version installed now.")
    is_typical: bool = strawberry.field(
        description="A typical (unmodified) configuration; only these may be updated automatically."
    )
    size_mb: int = strawberry.field(description="Size in megabytes.")
    model: strawberry.Private[DatabaseModel]

    @classmethod
    def from_model(cls, model: DatabaseModel) -> Database:
        return cls(
            id=to_global_id("Database", model.id), name=model.name, configuration=model.configuration,
            version=model.version, is_typical=model.is_typical, size_mb=model.size_mb, model=model,
        )

    @strawberry.field(description="The 1C cluster the database runs on; null when it is on no cluster kabinet knows.")
    @batched(clusters.cluster_of, to=lambda view: Cluster.from_model(view))
    def cluster(self, info: strawberry.Info) -> Cluster | None:
        return loaded(self, info)

    @strawberry.field(description=(
        "When the session list was last confirmed by the cluster (its agent's last report; now for a database "
        "kabinet's simulated cluster runs); null when no agent "
        "ever reported it. Compare with `cluster.connected`: a list confirmed long ago is not live."
    ))
    @batched(clusters.sessions_as_of_of)
    def sessions_as_of(self, info: strawberry.Info) -> dt.datetime | None:
        return loaded(self, info)

    @strawberry.field(description="The lock of new sessions set for a time window (now or later); null when none is set.")
    def lock(self) -> DatabaseLock | None:
        # Worked out only when asked for: it reads the clock, which most Database selections never need.
        return DatabaseLock.from_model(self.model)

    @strawberry.field(description="When the database gets updated.")
    @batched(schedule_resolvers.schedule_of, to=UpdateSchedule.from_view)
    def update_schedule(self, info: strawberry.Info) -> UpdateSchedule:
        return loaded(self, info)

    @strawberry.field(description="Update runs of the database, newest first.")
    @batched(run_resolvers.runs_of, to=connection_of(UpdateRun.from_model))
    def update_runs(self, info: strawberry.Info, first: First = None, after: After = None) -> Connection[UpdateRun]:
        return loaded(self, info)

    @strawberry.field(description="Sessions in this database, newest first. For a USER: only their own.")
    @batched(resolvers.sessions_of_databases, to=connection_of(Session.from_model), ids={"database_id": "Database"})
    def sessions(
        self,
        info: strawberry.Info,
        status: Annotated[SessionStatus | None, strawberry.argument(description="Only sessions in this status.")] = None,
        first: First = None,
        after: After = None,
    ) -> Connection[Session]:
        return loaded(self, info)


class SessionEventKind(str, Enum):
    STARTED = "STARTED"
    TERMINATING = "TERMINATING"
    ENDED = "ENDED"
    TERMINATED = "TERMINATED"
    REFUSED = "REFUSED"
    TERMINATION_REFUSED = "TERMINATION_REFUSED"


described_enum(SessionEventKind, "What happened to a session.", {
    "STARTED": "The session began.",
    "TERMINATING": "Someone asked to end it.",
    "ENDED": "The user logged off.",
    "TERMINATED": "The cluster ended it on request.",
    "REFUSED": "The cluster asked to admit it and was told no (limit reached, database locked).",
    "TERMINATION_REFUSED": "The cluster would not end it when asked: ACTIVE again, with why in `refusalReason`.",
})


@strawberry.type(description="One change of a session.")
class SessionEvent:
    kind: SessionEventKind = strawberry.field(description="What happened.")
    session: Session = strawberry.field(description="The session as it is after the change.")
    at: dt.datetime = strawberry.field(description="When it happened.")


@strawberry.type(
    description="What a live session list receives: the whole current list, and the change that produced it "
    "(null on the first message)."
)
class SessionListUpdate:
    sessions: list[Session] = strawberry.field(description="Every ACTIVE and TERMINATING session in scope.")
    event: SessionEvent | None = strawberry.field(description="The change; null on the first message.")


@strawberry.type(description="The result of `terminateSession`.")
class TerminateSessionPayload:
    session: Session | None = strawberry.field(default=None, description="The session, now TERMINATING.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `terminateAllSessions`.")
class TerminateAllSessionsPayload:
    sessions: list[Session] = strawberry.field(default_factory=list, description="Sessions that were asked to end.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `extendSubscription`.")
class ExtendSubscriptionPayload:
    cloud_subscription: CloudSubscription | None = strawberry.field(
        default=None, description="The subscription with the extension in force."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `setDatabaseLock` and `clearDatabaseLock`.")
class DatabaseLockPayload:
    database: Database | None = strawberry.field(default=None, description="The database with its lock as it now is.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.input(description="A lock of new sessions for a time window.")
class SetDatabaseLockInput:
    database_id: strawberry.ID = strawberry.field(description="The database to lock.")
    message: str = strawberry.field(description="What users turned away are told (1–500 characters).")
    starts_at: dt.datetime | None = strawberry.field(default=None, description="When the lock begins; now when omitted.")
    ends_at: dt.datetime = strawberry.field(description="When it ends: in the future, at most 31 days after it begins.")


@strawberry.type(description="Ending cloud sessions, locking databases and extending the cloud subscription.")
class CloudMutations:
    @strawberry.mutation(
        description="Lock new sessions of a database for a time window (maintenance): the cluster turns new "
        "sessions away with the message; running ones go on. OWNER and ADMIN."
    )
    @transactional(DatabaseLockPayload)
    async def set_database_lock(
        self, info: strawberry.Info, input: Annotated[SetDatabaseLockInput, strawberry.argument(description="The lock.")]
    ) -> DatabaseLockPayload:
        database = await database_locks.set_lock(
            info.context, pk_of(input.database_id, "Database") or NO_SUCH_ID, input.message, input.starts_at, input.ends_at,
        )
        return await expand(info, DatabaseLockPayload(database=Database.from_model(database)))

    @strawberry.mutation(description="Lift a database's lock of new sessions. OWNER and ADMIN.")
    @transactional(DatabaseLockPayload)
    async def clear_database_lock(
        self, info: strawberry.Info,
        database_id: Annotated[strawberry.ID, strawberry.argument(description="The database to unlock.")],
    ) -> DatabaseLockPayload:
        database = await database_locks.clear_lock(info.context, pk_of(database_id, "Database") or NO_SUCH_ID)
        return await expand(info, DatabaseLockPayload(database=Database.from_model(database)))

    @strawberry.mutation(
        description="Ask the cluster to end a session: ACTIVE → TERMINATING at once, TERMINATED when the cluster "
        "confirms. OWNER and ADMIN: any session of the organization; USER: only their own."
    )
    @transactional(TerminateSessionPayload)
    async def terminate_session(
        self, info: strawberry.Info,
        session_id: Annotated[strawberry.ID, strawberry.argument(description="The session to end.")],
    ) -> TerminateSessionPayload:
        session = await sessions.terminate(info.context, pk_of(session_id, "Session") or NO_SUCH_ID, field="session_id")
        return await expand(info, TerminateSessionPayload(session=Session.from_model(session)))

    @strawberry.mutation(
        description="End every ACTIVE session of the organization, or of one database. OWNER and ADMIN: everyone's; "
        "USER: all of their own."
    )
    @transactional(TerminateAllSessionsPayload)
    async def terminate_all_sessions(
        self,
        info: strawberry.Info,
        organization_id: Annotated[strawberry.ID, strawberry.argument(description="The organization.")],
        database_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only the sessions of this database; all when omitted.")
        ] = None,
    ) -> TerminateAllSessionsPayload:
        ended = await sessions.terminate_all(
            info.context, pk_of(organization_id, "Organization") or NO_SUCH_ID,
            None if database_id is None else pk_of(database_id, "Database") or NO_SUCH_ID, database_field="database_id",
        )
        return await expand(info, TerminateAllSessionsPayload(sessions=[Session.from_model(s) for s in ended]))

    @strawberry.mutation(
        description="Activate the temporary extension: +2 sessions and +8 databases for 7 days, once per "
        "subscription period. Owner only."
    )
    @transactional(ExtendSubscriptionPayload)
    async def extend_subscription(
        self, info: strawberry.Info,
        organization_id: Annotated[strawberry.ID, strawberry.argument(description="The organization.")],
        cloud_subscription_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Which of the organization's subscriptions; omitted: its main one (`cloudSubscription`)."
        )] = None,
    ) -> ExtendSubscriptionPayload:
        view = await cloud_subscriptions.extend_subscription(
            info.context, pk_of(organization_id, "Organization") or NO_SUCH_ID,
            None if cloud_subscription_id is None else pk_of(cloud_subscription_id, "CloudSubscription") or NO_SUCH_ID,
        )
        return await expand(info, ExtendSubscriptionPayload(cloud_subscription=CloudSubscription.from_view(view)))
