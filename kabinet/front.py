"""The front page at `/`: a small cabinet in the browser over the public GraphQL API (docs/front-page.md).

The page and its files live in kabinet/static/front/ (the libraries vendored by scripts/vendor_front.sh).
Everything served here carries a Content-Security-Policy that allows only this origin: scripts and
styles from files (no inline ones), fetches and the WebSocket to this host. The demo logins are
written into the page only while the demo data set is on (settings `seed_demo`).
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from foundation.settings import Settings
from kabinet.demo.blocks import DEMO_PASSWORD, ROMASHKA_PEOPLE, VASILEK_PEOPLE

FRONT_DIR = Path(__file__).parent / "static" / "front"
DEMO_MARK = "<!--demo-logins-->"
ROLE_NAMES = {"OWNER": "владелец", "ADMIN": "администратор", "ACCOUNTANT": "бухгалтер", "USER": "пользователь"}
# A Host header is the client's to write: only a plain host[:port] goes into the policy.
SANE_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")

BASE_POLICY = (
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "font-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
)


def content_security_policy(host: str | None, *, data_urls: bool = False) -> str:
    """Only this origin: 'self' for everything, and the WebSocket to this very host (ws: and wss:,
    spelled out for browsers whose 'self' does not cover WebSocket schemes). The one policy of the
    front page and GraphiQL; `data_urls` lets images and fonts be data: URLs (graphiql.min.css embeds
    its fonts and icons so)."""
    sockets = f" ws://{host} wss://{host}" if host and SANE_HOST.match(host) else ""
    policy = BASE_POLICY
    if data_urls:
        policy = tuple(p + " data:" if p.startswith(("img-src", "font-src")) else p for p in policy)
    return "; ".join((*policy, f"connect-src 'self'{sockets}"))


def front_headers(host: str | None, *, data_urls: bool = False) -> dict[str, str]:
    """The headers of every page kabinet serves to a browser (the front page, GraphiQL) and their files."""
    return {
        "Content-Security-Policy": content_security_policy(host, data_urls=data_urls),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def demo_logins_html() -> str:
    """The demo personas as an aside the page's script turns into one-click sign-ins."""
    rows = "".join(
        f'<li><button type="button" data-login="{escape(login)}" data-password="{escape(DEMO_PASSWORD)}">'
        f"{escape(login)}</button> — {escape(ROLE_NAMES[role.value])}, {escape(name)}</li>"
        for login, name, _phone, role, _position in (*ROMASHKA_PEOPLE, *VASILEK_PEOPLE)
    )
    return (
        '<aside id="demo-logins" class="demo-logins"><h2>Демо-доступ</h2>'
        f"<p>Демонстрационные данные включены. Пароль у всех: <code>{escape(DEMO_PASSWORD)}</code></p>"
        f"<ul>{rows}</ul></aside>"
    )


def render_index(settings: Settings) -> str:
    page = (FRONT_DIR / "index.html").read_text(encoding="utf-8")
    return page.replace(DEMO_MARK, demo_logins_html() if settings.should_seed_demo else "")


async def index(request: Request) -> Response:
    """GET / — the front page; the demo logins on it only with the demo data set on."""
    html = render_index(request.app.state.settings)
    headers = {**front_headers(request.headers.get("host")), "Cache-Control": "no-store"}
    return HTMLResponse(html, headers=headers)


class FrontFiles(StaticFiles):
    """The page's scripts, styles and vendored libraries, each with the page's policy and headers."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200) -> Response:  # type: ignore[override]
        response = super().file_response(full_path, stat_result, scope, status_code)
        host = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), None)
        response.headers.update(front_headers(host))
        response.headers["Cache-Control"] = "no-cache"  # revalidated (ETag): a new release is picked up at once
        return response


def files() -> FrontFiles:
    return FrontFiles(directory=FRONT_DIR)
