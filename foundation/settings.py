"""Settings from `KABINET_*` environment variables (and a `.env` file).

With nothing set, kabinet runs on the embedded default: a SQLite file in the data folder, the
in-process `memory://` broker, in-process workers, the demo data set seeded on first start.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything that differs between a laptop, CI and production."""

    model_config = SettingsConfigDict(env_prefix="KABINET_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="Where the embedded default keeps its files.")
    database_url: str | None = Field(
        None, description="sqlite:///abs/path.sqlite3 or postgres://user@host:port/db."
    )
    broker_url: str = Field("memory://", description="memory://, redis://… or postgres://…")
    broker_namespace: str | None = Field(
        None, description="Prefix of this deployment's Redis channels; unset, the database's name, so that deployments "
        "(or test runs) on different databases sharing one Redis never hear each other."
    )
    secret_key: str | None = Field(
        None, description="Signs tokens and download URLs; generated once into data_dir if unset."
    )
    mail_url: str | None = Field(None, description="smtp://…, file:///dir or console://.")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Logs on stderr: one JSON object a line (json), lines for a person (text), or auto: text at "
        "a terminal, JSON otherwise (a service manager, a container, a file)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="The least level logged.")
    # An HTTP SMS gateway (workers/sms.py). Placeholders in sms_params, sms_headers and sms_ok_json:
    # {phone} {text} {sender} {id} {login} {password} {token}.
    sms_url: str | None = Field(
        None, description="The SMS gateway's URL: when set, every SMS goes to it whatever mail_url says (e-mail keeps "
        "going by mail_url). Unset, SMS go nowhere (sign-up by phone and codes by phone answer UNAVAILABLE), "
        "unless sms_by_mail_url."
    )
    sms_method: Literal["GET", "POST"] = Field("POST", description="The HTTP method of the gateway request.")
    sms_params_in: Literal["query", "form", "json"] = Field(
        "form", description="Where sms_params go: the URL query (the only choice with GET), form fields or a JSON body."
    )
    sms_params: dict[str, Any] = Field(
        default_factory=dict, description='The parameters as a JSON object of templates, e.g. {"to": "{phone}", "msg": '
        '"{text}", "api_id": "{token}"}; a parameter that is only "{sender}" is left out while sms_sender is empty.'
    )
    sms_headers: dict[str, str] = Field(
        default_factory=dict, description='Extra request headers (templates), e.g. {"Authorization": "Bearer {token}"}.'
    )
    sms_login: str = Field("", description="The gateway login: {login}, and the user of basic auth.")
    sms_password: SecretStr = Field(SecretStr(""), description="The gateway password: {password}, and basic auth's.")
    sms_token: SecretStr = Field(SecretStr(""), description="An API key or token: {token}.")
    sms_basic_auth: bool = Field(False, description="Send sms_login and sms_password as HTTP basic auth.")
    sms_sender: str = Field("", description="The sender name the gateway has approved: {sender}.")
    sms_phone_format: Literal["digits", "plus"] = Field(
        "digits", description="{phone} as digits only (79161234567, what most gateways want) or with a plus (+79161234567)."
    )
    sms_timeout_seconds: float = Field(10.0, gt=0, description="The longest wait for the gateway's answer.")
    sms_ok_text: str = Field("", description="Besides HTTP 2xx, the answer must contain this text to count as sent.")
    sms_ok_json: str = Field(
        "", description="Besides HTTP 2xx, the answer must be JSON with this field: `path` (present, not null or false) "
        "or `path=value`, dotted, e.g. `sms.{phone}.status=OK`."
    )
    sms_by_mail_url: bool | None = Field(
        None, description="With no sms_url, write SMS where a file:// or console:// mail_url says, for a laptop or the "
        "demo (SMTP cannot carry them). Default: on where the demo data set is seeded (the embedded default), else off.",
    )
    public_url: str = Field("", description="Public base URL; download and invite links use it.")
    seed_demo: bool | None = Field(
        None, description="Seed the demo data set on first start (default: on for SQLite)."
    )
    migrate_on_start: bool | None = Field(
        None, description="Apply migrations when the API starts (default: on for SQLite; run `kabinet migrate` otherwise)."
    )
    run_workers: bool = Field(True, description="Run the background workers inside the API process.")
    cluster_churn: float = Field(1.0, description="Simulated cluster activity; 0 keeps sessions still.")

    access_token_minutes: int = 15
    refresh_token_days: int = 30
    jwt_issuer: str = "kabinet"
    jwt_audience: str = "kabinet-api"
    download_url_seconds: int = 300
    login_max_failures: int = 5
    login_lock_minutes: int = 10
    code_resend_seconds: int = Field(
        60, ge=0, description="Sign-up, password-reset and e-mail-change codes: the least time between two codes to one address."
    )
    codes_per_address_hour: int = Field(
        5, ge=1, description="Sign-up, password-reset and e-mail-change codes one address receives in an hour at most."
    )
    codes_per_client_hour: int = Field(
        20, ge=1, description="Sign-up, password-reset and e-mail-change codes requested from one client address "
        "(IP) in an hour at most, whatever addresses they go to: no SMS pumping from one source.",
    )
    login_address_max_failures: int = Field(
        100, description="Wrong passwords one client address may send, whatever the logins, per window; then RATE_LIMITED."
    )
    login_address_window_minutes: int = Field(15, description="The window of login_address_max_failures.")
    refresh_token_retention_days: int = Field(
        30, ge=1, description="Refresh tokens are deleted this long after they expired or were revoked "
        "(resolvers/common/housekeeping.py; a revoked one never before the ended sign-ins stop reading it)."
    )
    verification_code_retention_days: int = Field(
        30, ge=1, description="Confirmation codes are deleted this long after they expired (never while a sign-up waits for its code)."
    )
    sent_message_retention_days: int = Field(
        30, ge=1, description="Delivered e-mail and SMS are deleted from the outbox this long after they were sent "
        "(pending and failed ones never)."
    )
    refused_record_retention_days: int = Field(
        90, ge=1, description="Refused provider records (the staff desk, `kabinet provider refused`) are deleted this long after."
    )
    password_hash_threads: int = Field(
        2, ge=1, description="Password hashes computed at once (each takes ~50 ms of CPU and 64 MiB), off the event loop."
    )

    max_page_size: int = 100
    ws_compression: bool = Field(
        False,
        description="Offer permessage-deflate on WebSockets: smaller messages, but a compressor per socket "
        "(~50 KB each) and every message compressed once per subscriber.",
    )
    sql_json_reads: bool = Field(
        True, description="On PostgreSQL, answer a query the statement path can say in SQL with one statement that "
        "builds its JSON (schema/sql_json.py); false: every query goes through the executor."
    )
    response_cache_mb: int = Field(
        64, description="Memory for answers kept per user until what they read changes (kabinet/response_cache.py); 0 turns it off."
    )
    response_cache_seconds: float = Field(
        5.0, description="How long a kept answer may be given again at most (for what changes with time alone)."
    )
    persisted_queries_mb: float = Field(
        8, ge=0, description="Memory for the query texts of Apollo's automatic persisted queries, per process "
        "(kabinet/persisted_queries.py); 0 turns them off (PERSISTED_QUERY_NOT_SUPPORTED)."
    )
    max_query_depth: int = 15
    max_aliases: int = 50
    max_query_cost: int = Field(
        250_000, description="Fields an answer may hold at most, estimated before it runs: a connection's `first` "
        "(its maximum when not given) and a plain list (max_page_size) multiply what is below them (schema/limits.py)."
    )
    max_query_tokens: int = Field(5_000, description="Lexical tokens (and, apart, comments) a document may have.")
    max_body_bytes: int = 1024 * 1024
    max_response_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="An answer (an HTTP body, a WebSocket message) beyond this many bytes "
        "is not sent: the client gets a RESPONSE_TOO_LARGE error instead, and asks for less."
    )
    query_cache_mb: int = Field(
        32, ge=1, description="Memory for parsed and validated query texts, and apart as much for the completion plans "
        "made for them (schema/limits.py, schema/execution.py); a text estimated over a 64th of it (512 KiB by default) is not kept."
    )
    provider_timezone: str = Field(
        "Europe/Moscow", description="The IANA zone of the provider's 1C: a date-time its records write without an "
        "offset (`30.11.2026 14:05:00`) is this zone's time."
    )
    provider_max_body_bytes: int = Field(
        20 * 1024 * 1024, description="A request of the provider API (records, NDJSON) beyond this is refused (413)."
    )
    provider_max_lines: int = Field(
        10_000, ge=1, description="Lines (records; blank lines counted) one request of the provider API may carry: "
        "more is refused (413 TOO_MANY_LINES) before any is applied."
    )
    provider_max_refusals_kept: int = Field(
        1_000, ge=0, description="Refused lines of one provider API request, or one `kabinet import` run, kept one by one "
        "for the staff desk; past it one row says so and the answer (the report) marks the rest `kept: false`."
    )
    ws_max_message_bytes: int = Field(1024 * 1024, description="A WebSocket message beyond this closes the socket (1009).")
    ws_connection_init_seconds: float = Field(
        10.0, description="A WebSocket without `connection_init` this long after it opened is closed (4408), on both protocols."
    )

    event_poll_seconds: float = Field(
        2.0, description="How often each process reads the event log even without a broker notice (lost notices)."
    )
    ended_logins_poll_seconds: float = Field(
        2.0, gt=0, description="How often each process reads the sign-ins ended since its last read, whether or not "
        "a broker notice told it (the in-process broker reaches no other process; a notice may be lost)."
    )
    subscriber_queue_size: int = Field(
        1000, ge=1, description="Events a live subscription may fall behind by before it ends with SLOW_CONSUMER."
    )
    cluster: Literal["simulated", "agent"] | None = Field(
        None,
        description="Who ends sessions and carries out update runs: the in-process simulated cluster, or a real "
        "cluster agent over /cluster/… "
        "(default: agent once an agent token exists, issued by `kabinet agent token create` (revoked ones too) or "
        "in KABINET_CLUSTER_AGENT_TOKENS, else simulated).",
    )
    cluster_agent_tokens: str = Field(
        "", description="Deprecated: comma-separated sha256 hashes of agent tokens acting for EVERY organization (said "
        "at start-up); `kabinet agent token create --organizations …` issues scoped ones."
    )
    agent_snapshot_max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="A cluster agent's snapshot of sessions (POST /cluster/sessions/snapshot: up "
        "to 2,000 infobases and 20,000 sessions) beyond this many bytes is refused (413); other agent calls take max_body_bytes."
    )
    cluster_stale_seconds: float = Field(
        60.0, gt=0, description="A cluster whose agent has not reported its sessions for this long is shown disconnected "
        "(Cluster.connected false; the housekeeping worker flips it, and the next snapshot back)."
    )
    agent_clock_skew_seconds: float = Field(
        300.0, ge=0, description="How far in the future a time a cluster agent reports (a session's start or end) may "
        "be, for clocks that disagree; later ones are refused."
    )

    update_capacity_per_slot: int = Field(
        20, description="ON_RELEASE updates planned for one moment at most (runs are spread over the 7 days after a release)."
    )
    update_lease_seconds: float = Field(
        30.0, description="How long a worker or cluster agent holds a claimed update run; renewed every third of it "
        "while the run goes on. A run whose worker died is taken over by another worker once its lease has run out; "
        "an agent's is taken back (SCHEDULED again)."
    )
    update_max_attempts: int = Field(
        3, description="Tries of one update run (a failure or a lost worker each count) before it is FAILED."
    )
    update_retry_seconds: float = Field(300.0, description="Pause before a failed update run is tried again.")
    update_parallel_runs: int = Field(4, description="Update runs one worker process carries out at the same time.")
    update_step_seconds: float = Field(
        0.6, description="Simulated cluster: pause before each of an update's 5 progress steps (and to end a session)."
    )
    update_journal: Path | None = Field(
        None, description="If set, one JSON line is appended to this file for every database update the workers ask "
        "the cluster for: an audit of executions (used by the scale-out test)."
    )

    @field_validator("provider_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not an IANA time zone: {value!r}") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kabinet.sqlite3').resolve()}"

    @property
    def resolved_broker_namespace(self) -> str:
        """Every process of one deployment shares its database, so the database's name is a namespace
        they all agree on without being told."""
        if self.broker_namespace is not None:
            return self.broker_namespace
        return self.resolved_database_url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def should_seed_demo(self) -> bool:
        return self.is_sqlite if self.seed_demo is None else self.seed_demo

    @property
    def sms_to_mail_url(self) -> bool:
        """SMS go where the mail URL says: no gateway, a file or console mail URL, and asked for (or the demo)."""
        wanted = self.should_seed_demo if self.sms_by_mail_url is None else self.sms_by_mail_url
        scheme = (self.mail_url or "file://").split(":", 1)[0].lower()  # unset: the data folder's files
        return not self.sms_url and wanted and scheme in ("file", "console")

    @property
    def sms_available(self) -> bool:
        """Whether an SMS can reach a phone: by the gateway, or (a laptop, the demo) by the mail URL."""
        return bool(self.sms_url) or self.sms_to_mail_url

    @property
    def should_migrate_on_start(self) -> bool:
        return self.is_sqlite if self.migrate_on_start is None else self.migrate_on_start

    @property
    def agent_token_hashes(self) -> list[str]:
        return [h.strip().lower() for h in self.cluster_agent_tokens.split(",") if h.strip()]

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, or one generated on first use and kept in the data folder."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key
