"""Cloud rental: the subscription and its extension, databases and user sessions."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity
from models.provider import external_id


class SessionStatus(str, Enum):
    ACTIVE = "ACTIVE"
    TERMINATING = "TERMINATING"
    ENDED = "ENDED"
    TERMINATED = "TERMINATED"
    REFUSED = "REFUSED"  # the cluster asked to admit it beyond a limit or into a locked database: never ran


class ClientKind(str, Enum):
    RDP = "RDP"
    THIN_CLIENT = "THIN_CLIENT"
    WEB_CLIENT = "WEB_CLIENT"
    MOBILE = "MOBILE"


class CloudSubscription(Entity):
    """One tariff subscription of an organization's cloud rental: an organization may have several
    (the main tariff and additions), its limits are their sum (resolvers/cloud/subscriptions.py)."""

    organization = fields.ForeignKeyField("models.Organization", related_name="cloud_subscriptions", on_delete=fields.CASCADE)
    tariff = fields.CharField(max_length=100)
    sessions_limit = fields.IntField()
    databases_limit = fields.IntField()
    starts_on = fields.DateField()
    ends_on = fields.DateField()
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "cloud_subscription"
        indexes = (("organization_id", "created_at"),)


class SubscriptionExtension(Entity):
    """The one temporary extension a subscription period allows."""

    subscription = fields.ForeignKeyField("models.CloudSubscription", related_name="extensions", on_delete=fields.CASCADE)
    period_starts_on = fields.DateField()
    extra_sessions = fields.IntField()
    extra_databases = fields.IntField()
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()

    class Meta:
        table = "subscription_extension"
        unique_together = (("subscription", "period_starts_on"),)


class Cluster(Entity):
    """A 1C cluster kabinet knows by name: its agent reports its sessions (the snapshot door), its
    databases name it. `connected` is stored: flipped by the snapshot door and, when no report came
    for KABINET_CLUSTER_STALE_SECONDS, by the housekeeping worker (resolvers/cloud/clusters.py)."""

    name = fields.CharField(max_length=100, unique=True)
    description = fields.CharField(max_length=500, null=True)
    time_zone = fields.CharField(max_length=64, null=True)  # the cluster server's (informative: the agent converts)
    last_report_at = fields.DatetimeField(null=True)
    connected = fields.BooleanField(default=False)

    class Meta:
        table = "cluster"


class Database(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="databases", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=200)
    configuration = fields.CharField(max_length=200)
    version = fields.CharField(max_length=50)
    is_typical = fields.BooleanField()
    size_mb = fields.IntField(default=0)
    locked_for_update = fields.BooleanField(default=False, db_default=False)
    # A lock of new sessions («блокировка начала сеансов») for a time window, with a message for users.
    lock_message = fields.CharField(max_length=500, null=True)
    locked_from = fields.DatetimeField(null=True)
    locked_until = fields.DatetimeField(null=True)
    external_id = external_id()  # the provider's own id (models/provider.py)
    # Where the database runs: the cluster and the infobase's name there (null: a cluster kabinet does not know).
    cluster = fields.ForeignKeyField("models.Cluster", related_name="databases", null=True, on_delete=fields.SET_NULL)
    infobase = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "database"
        indexes = (("organization_id", "name"),)
        unique_together = (("cluster", "infobase"),)


class Session(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="sessions", on_delete=fields.CASCADE)
    database = fields.ForeignKeyField("models.Database", related_name="sessions", null=True, on_delete=fields.SET_NULL)
    user = fields.ForeignKeyField("models.User", related_name="sessions", null=True, on_delete=fields.SET_NULL)
    user_name = fields.CharField(max_length=200)
    client_kind = fields.CharEnumField(ClientKind, max_length=12)
    host = fields.CharField(max_length=200, null=True)
    started_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    status = fields.CharEnumField(SessionStatus, max_length=12, default=SessionStatus.ACTIVE)
    cluster_session_id = fields.CharField(max_length=100, null=True, db_index=True)  # the id the 1C cluster knows it by
    termination_requested_by = fields.ForeignKeyField(
        "models.User", related_name="terminations_requested", null=True, on_delete=fields.SET_NULL
    )
    termination_requested_at = fields.DatetimeField(null=True)
    refusal_reason = fields.CharField(max_length=300, null=True)  # why a REFUSED session was not admitted

    class Meta:
        table = "session"
        indexes = (("organization_id", "status", "started_at"), ("database_id", "status", "started_at"))
        # The cluster names a session within its infobase: one row per (database, cluster session id).
        unique_together = (("database", "cluster_session_id"),)
