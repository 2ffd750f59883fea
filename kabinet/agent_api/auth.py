"""Who the agent is (its bearer token), and how a refusal is answered: both domains' endpoints share them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from foundation.logs import current_request
from kabinet.auth import bearer_token
from resolvers.cloud import agent_tokens
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.program_tokens import Program


class AgentError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="kabinet-cluster"'} if self.status == 401 else None
        body = {"error": {"code": self.code, "message": self.message, "field": self.field}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def invalid(field: str | None, message: str) -> AgentError:
    return AgentError(400, "INVALID", message, field)


def not_found(field: str, message: str) -> AgentError:
    """No such object, or not this agent's: the same answer, so a token learns nothing of others'."""
    return AgentError(404, "NOT_FOUND", message, field)


# The domain's field names as the agent's JSON spells them.
AGENT_FIELDS = {
    "cluster_session_id": "clusterSessionId", "organization_code": "organizationCode", "database_id": "databaseId",
    "client_kind": "clientKind", "taken_at": "takenAt", "time_zone": "timeZone",
}


def refused(error: UserFacingError) -> AgentError:
    """A resolver's refusal as the agent reads it: 409 for a conflicting state, else 400 (bad input)."""
    status = 409 if error.code == ErrorCode.CONFLICT else 400
    return AgentError(status, error.code.value, error.message, AGENT_FIELDS.get(error.field, error.field))


async def authenticate(request: Request) -> Program:
    """The agent the bearer token belongs to (resolvers/cloud/agent_tokens.py), or 401."""
    agent = await agent_tokens.authenticate(request.app.state.settings, bearer_token(request.headers.get("authorization")))
    if agent is None:
        raise AgentError(401, "UNAUTHENTICATED", "A valid cluster agent token is required (Authorization: Bearer …).")
    if (record := current_request.get()) is not None:  # the request's log line: the token's id, never the token
        record.viewer = f"agent:{agent.token_id or agent.name}"
    return agent
