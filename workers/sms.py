"""SMS through an HTTP gateway (SMS.ru, SMSC.ru, SMS Aero, …), configured by `KABINET_SMS_*`.

Gateways differ in every detail, so the request is a template (settings `sms_params`,
`sms_headers`, with `{phone}`, `{text}`, `{sender}`, `{id}`, `{login}`, `{password}`, `{token}`).
Many answer HTTP 200 with an error in the body, so a message counts as sent on 2xx *and*, when
configured, a text (`sms_ok_text`) or JSON field (`sms_ok_json`) in the answer; anything else
raises, and the mail worker retries it with its backoff (workers/mail.py).

An SMS text is usually a code, a secret, and the request carries credentials: neither is logged
nor kept in an error (`last_error`); both are masked out of every error text.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx

from foundation.settings import Settings
from models.outbox import OutboxMessage

log = logging.getLogger("kabinet.sms")

PLACEHOLDER = re.compile(r"\{(phone|text|sender|id|login|password|token)\}")
ANSWER_SNIPPET = 300  # characters of the gateway's answer kept in an error


class SmsGatewayError(Exception):
    """The gateway did not take the message (network, HTTP status, or the answer says so)."""


def phone_for(recipient: str, phone_format: str) -> str:
    """`+7 916 123-45-67` as `79161234567` (digits) or `+79161234567` (plus)."""
    digits = re.sub(r"\D", "", recipient)
    return f"+{digits}" if phone_format == "plus" else digits


def fill(template: Any, values: dict[str, str]) -> Any:
    """The template with placeholders replaced in every string, nested dicts and lists included."""
    if isinstance(template, str):
        return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)
    if isinstance(template, dict):
        return {fill(key, values): fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    return template


@dataclass
class GatewaySender:
    url: str
    method: str = "POST"
    params_in: str = "form"
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    login: str = ""
    password: str = ""
    token: str = ""
    basic_auth: bool = False
    sender: str = ""
    phone_format: str = "digits"
    timeout: float = 10.0
    ok_text: str = ""
    ok_json: str = ""

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if self.method == "GET" and self.params_in != "query":
            raise ValueError("KABINET_SMS_METHOD=GET carries parameters in the query only (KABINET_SMS_PARAMS_IN=query)")
        if urlsplit(self.url).scheme.lower() not in ("http", "https"):
            raise ValueError("KABINET_SMS_URL must be an http:// or https:// URL")

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewaySender:
        # httpx logs every request at INFO with its full URL: with GET that holds the credentials and
        # the text (a code). Its warnings still come through.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return cls(
            url=settings.sms_url or "", method=settings.sms_method, params_in=settings.sms_params_in,
            params=settings.sms_params, headers=settings.sms_headers, login=settings.sms_login,
            password=settings.sms_password.get_secret_value(), token=settings.sms_token.get_secret_value(),
            basic_auth=settings.sms_basic_auth, sender=settings.sms_sender, phone_format=settings.sms_phone_format,
            timeout=settings.sms_timeout_seconds, ok_text=settings.sms_ok_text, ok_json=settings.sms_ok_json,
        )

    async def send_sms(self, message: OutboxMessage) -> None:
        values = {
            "phone": phone_for(message.recipient, self.phone_format), "text": message.body, "sender": self.sender,
            "id": str(message.id), "login": self.login, "password": self.password, "token": self.token,
        }
        params = {
            name: fill(value, values) for name, value in self.params.items()
            if not (value == "{sender}" and not self.sender)  # no empty sender: gateways refuse it
        }
        url = httpx.URL(self.url)
        request: dict[str, Any] = {"headers": fill(self.headers, values)}
        if self.params_in == "query":
            url = url.copy_merge_params({name: _scalar(value) for name, value in params.items()})
        elif self.params_in == "form":
            request["data"] = {name: _scalar(value) for name, value in params.items()}
        else:
            request["json"] = params
        if self.basic_auth:
            request["auth"] = (self.login, self.password)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(self.method, url, **request)
        except httpx.HTTPError as error:
            # the error's text may name the URL, and with it a query full of secrets
            raise SmsGatewayError(self._masked(f"{type(error).__name__}: {error}", values)) from None
        self._check(response, values)
        log.debug("SMS %s to %s taken by the gateway (HTTP %d)", message.id, message.recipient, response.status_code)

    def _check(self, response: httpx.Response, values: dict[str, str]) -> None:
        answer = response.text
        snippet = self._masked(answer[:ANSWER_SNIPPET].strip(), values)
        if not response.is_success:
            raise SmsGatewayError(f"HTTP {response.status_code}: {snippet}")
        if self.ok_text and self.ok_text not in answer:
            raise SmsGatewayError(f"the answer does not say {self.ok_text!r}: {snippet}")
        if not self.ok_json:
            return
        path, equals, expected = fill(self.ok_json, values).partition("=")
        try:
            value: Any = json.loads(answer)
        except ValueError:
            raise SmsGatewayError(f"the answer is not JSON: {snippet}") from None
        for key in path.split("."):
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                raise SmsGatewayError(f"the answer has no {self._masked(path, values)}: {snippet}")
        if equals:
            actual = value if isinstance(value, str) else json.dumps(value)
            if actual != expected:
                raise SmsGatewayError(f"{self._masked(path, values)} is {actual!r}, not {expected!r}: {snippet}")
        elif value is None or value is False:
            raise SmsGatewayError(f"{self._masked(path, values)} is {json.dumps(value)}: {snippet}")

    def _masked(self, text: str, values: dict[str, str]) -> str:
        """`text` without the credentials, the message text and any number of 4+ digits in it (codes)."""
        secrets = [values["password"], values["token"], values["text"], *re.findall(r"\d{4,}", values["text"])]
        for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
            for form in (secret, quote(secret, safe=""), quote_plus(secret)):
                text = text.replace(form, "***")
        return text

    def describe(self) -> str:
        """The gateway without its query (which may hold credentials)."""
        url = httpx.URL(self.url)
        return f"{self.method} {url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"


def _scalar(value: Any) -> str:
    """A query or form value: strings as they are, other JSON values as JSON (1, true)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
