"""The front page at `/` without a browser: its Content-Security-Policy, the demo logins only with the
demo on, its files served (with the same policy). The browser drives it in test_front_page_browser.py."""

from __future__ import annotations

import re

import httpx
import pytest

from kabinet.app import create_app
from kabinet.demo.blocks import DEMO_PASSWORD, ROMASHKA_PEOPLE, VASILEK_PEOPLE
from kabinet.front import FRONT_DIR, content_security_policy

DEMO_LOGINS = [person[0] for person in (*ROMASHKA_PEOPLE, *VASILEK_PEOPLE)]


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";"))}


def assert_own_origin_only(response: httpx.Response) -> None:
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    for name in ("script-src", "style-src", "img-src"):
        assert policy[name] == ["'self'"], name  # no 'unsafe-inline', no other host
    assert policy["connect-src"] == ["'self'", "ws://kabinet.test", "wss://kabinet.test"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_front_page_is_served_at_the_root_with_a_policy_of_its_own_origin(client):
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_own_origin_only(page)
    assert page.headers["cache-control"] == "no-store"
    assert '<html lang="ru">' in page.text and 'href="/graphql"' in page.text
    # nothing inline for the policy to refuse: scripts and styles are files of this origin
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and "<style" not in page.text and " style=" not in page.text
    assert re.findall(r'(?:src|href)="(https?:)?//', page.text) == []


async def test_the_demo_logins_are_on_the_page_while_the_demo_is_on(client):
    page = (await client.get("/")).text
    assert 'id="demo-logins"' in page and DEMO_PASSWORD in page
    for login in DEMO_LOGINS:
        assert f'data-login="{login}"' in page


async def test_without_the_demo_the_page_offers_sign_in_and_graphiql_but_no_demo_credentials(settings):
    app = create_app(settings.model_copy(update={"seed_demo": False}))  # `/` reads no database: no lifespan needed
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kabinet.test") as plain:
        page = await plain.get("/")
    assert page.status_code == 200
    assert_own_origin_only(page)
    assert 'href="/graphql"' in page.text and 'src="/static/front/app.js"' in page.text
    assert "demo-logins" not in page.text and DEMO_PASSWORD not in page.text
    assert not any(login in page.text for login in DEMO_LOGINS)


async def test_every_file_the_page_loads_is_served_with_the_same_policy(client):
    page = (await client.get("/")).text
    pending = re.findall(r'(?:src|href)="(/static/front/[^"]+)"', page)
    assert "/static/front/app.js" in pending and "/static/front/style.css" in pending
    seen: set[str] = set()
    while pending:  # the page's modules, and the modules they import (relative paths)
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        response = await client.get(path)
        assert response.status_code == 200, path
        assert_own_origin_only(response)
        if path.endswith(".js"):
            assert response.headers["content-type"].startswith("text/javascript"), path  # module scripts need it
            folder = path.rsplit("/", 1)[0]
            for relative in re.findall(r'from\s*"\./([^"]+)"', response.text):
                pending.append(f"{folder}/{relative}")
    assert "/static/front/vendor/preact-htm.module.js" in seen and "/static/front/vendor/graphql-ws.min.js" in seen
    assert {"/static/front/api.js", "/static/front/dashboard.js", "/static/front/format.js"} <= seen


async def test_the_page_files_answer_not_modified_with_the_policy_too(client):
    first = await client.get("/static/front/app.js")
    again = await client.get("/static/front/app.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert_own_origin_only(again)


@pytest.mark.parametrize("host", ["evil.example; script-src *", "a b", "x\u00e9.example"])
def test_a_host_header_that_is_not_a_plain_host_adds_no_websocket_source(host):
    policy = directives(content_security_policy(host))
    assert policy["connect-src"] == ["'self'"] and policy["script-src"] == ["'self'"]


def test_the_vendored_libraries_are_committed_with_their_versions():
    versions = (FRONT_DIR / "vendor" / "VERSIONS.txt").read_text()
    assert "htm@3.1.1" in versions and "graphql-ws@6.4.2" in versions
    for name in ("preact-htm.module.js", "graphql-ws.min.js"):
        assert name in versions and (FRONT_DIR / "vendor" / name).stat().st_size > 1000
