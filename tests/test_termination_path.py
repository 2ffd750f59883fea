"""How far a termination travels: the files of ours it passes through from `terminateSession` to the
subscriber's frame, recorded as the code runs (issue 19: at most 12). ARCHITECTURE.md follows the
same path by hand.

What counts: from the mutation's resolver (schema/cloud.py) on, every fresh call of a function of
ours (a coroutine resumed is no new call) is an arrow from its caller's file to its own. A file that
calls on into another file of ours passes the termination on and is on the path; one that only
answers and returns (the role rule, the audit row, a lookup) is a side call, listed apart; the
foundation and the models (the clock, ids, row classes) are the floor everything stands on."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests import factories
from tests.factories import Role
from tests.test_live_sessions import SESSIONS_LIVE, TRANSPORT_WS, gid, terminate, watch

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ("foundation/", "models/")
MAX_FILES = 12


def _ours(filename: str) -> str | None:
    path = Path(filename)
    if not path.is_absolute() or ROOT not in path.parents or ".venv" in path.parts:
        return None
    relative = path.relative_to(ROOT)
    return None if relative.parts[0] == "tests" else str(relative)


def follow(arrows: list[tuple[str | None, str]]) -> tuple[list[str], list[str]]:
    """(the files on the path in the order first entered, the side calls) from (caller, callee) arrows."""
    start = next(i for i, (_, callee) in enumerate(arrows) if callee == "schema/cloud.py")
    arrows = [(a, b) for a, b in arrows[start:] if not b.startswith(FLOOR)]
    entered = list(dict.fromkeys(b for _, b in arrows))
    passes_on = {a for a, b in arrows if a is not None and a != b}
    return [f for f in entered if f in passes_on], [f for f in entered if f not in passes_on]


async def test_a_termination_reaches_the_subscribers_frame_through_few_files(gql, app, live_server):
    org, users = await factories.create_team(Role.ADMIN)
    database = await factories.create_database(org)
    leaving = await factories.create_session(database, user_name="Кладовщик")
    sock = await watch(gql, live_server, TRANSPORT_WS, users[Role.OWNER].email, SESSIONS_LIVE, {"org": gid("Organization", org.id)})
    try:
        await sock.next_data()
        await gql.token_for_password(users[Role.ADMIN].email, factories.PASSWORD)  # signed in before we watch
        await asyncio.sleep(0.2)
        arrows: list[tuple[str | None, str]] = []
        seen: dict[int, object] = {}  # frames kept alive while we watch, so that an id means one frame

        def profile(frame, event, arg):
            if event == "call" and id(frame) not in seen:  # a fresh call, not a coroutine resumed
                seen[id(frame)] = frame
                callee = _ours(frame.f_code.co_filename)
                if callee is not None:
                    caller = frame.f_back
                    arrows.append((_ours(caller.f_code.co_filename) if caller else None, callee))

        sys.setprofile(profile)
        try:
            await terminate(gql, users[Role.ADMIN].email, leaving)
            update = (await sock.next_data())["data"]["sessions"]
        finally:
            sys.setprofile(None)
            seen.clear()
    finally:
        await sock.close()
    assert update["event"]["kind"] == "TERMINATING"
    path, side_calls = follow(arrows)
    print("path:", *path, "side calls:", *side_calls, sep="\n  ")
    assert path[0] == "schema/cloud.py" and "resolvers/cloud/sessions.py" in path and "resolvers/cloud/live.py" in path
    assert len(path) <= MAX_FILES, path
