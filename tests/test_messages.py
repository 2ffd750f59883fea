"""Message templates (resolvers/messages/): strict filling, and, read from the source, that every
template is sent, with exactly its variables, and that no message text is left in the code."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from resolvers import messages

ROOT = Path(__file__).resolve().parent.parent
APPLICATION = ("kabinet", "models", "resolvers", "schema", "workers")
MESSAGES = ROOT / "resolvers" / "messages"
OUTBOX = ROOT / "resolvers" / "common" / "outbox.py"
CYRILLIC = re.compile("[А-Яа-яЁё]")
# Cyrillic literals in a module that sends messages which are not messages (function: why).
NOT_MESSAGES = {"_default_name"}  # organization_claims.py: an organization's name until it is given one


def application_files() -> list[Path]:
    return sorted(path for folder in APPLICATION for path in (ROOT / folder).rglob("*.py"))


@dataclass
class Send:
    """One `outbox.email(...)` / `outbox.sms(...)` call."""

    path: str
    line: int
    channel: str
    names: list[str] | None  # the template(s) it names; None when the name is computed
    variables: set[str]
    spread: bool  # passes **values


def literal_names(node: ast.expr) -> list[str] | None:
    """"a" → [a]; `"a" if c else "b"` → [a, b]; anything else → None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = literal_names(node.body), literal_names(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def sends(path: Path, root: Path = ROOT) -> list[Send]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "outbox" and node.func.attr in ("email", "sms")):
            continue
        assert len(node.args) == 2, f"{path}:{node.lineno}: outbox.{node.func.attr}(to, template, **variables)"
        found.append(Send(
            str(path.relative_to(root)), node.lineno, node.func.attr, literal_names(node.args[1]),
            {k.arg for k in node.keywords if k.arg}, any(k.arg is None for k in node.keywords),
        ))
    return found


def string_literals(path: Path) -> set[str]:
    return {
        node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def sent_templates() -> dict[str, list[Send]]:
    """Template → the calls that send it. A call with a computed name (a helper sending several flows' codes) sends
    the templates of its channel that its module names in plain string literals and no call names."""
    by_template: dict[str, list[Send]] = {}
    for path in application_files():
        calls = sends(path)
        named = {name for call in calls if call.names for name in call.names}
        computed = [call for call in calls if call.names is None]
        for call in calls:
            for name in call.names or []:
                by_template.setdefault(name, []).append(call)
        if computed:
            for name in (string_literals(path) & set(messages.names())) - named:
                channel = "email" if messages.template(name).is_email else "sms"
                by_template.setdefault(name, []).extend(call for call in computed if call.channel == channel)
    return by_template


def test_every_template_reads_and_names_exactly_the_variables_it_uses():
    assert messages.names(), "no templates found"
    for name in messages.names():
        found = messages.template(name)  # raises MessageError on a mismatch
        assert found.text.template.strip(), name


def test_every_template_is_sent_and_every_send_names_a_template():
    sent = {name for name, calls in sent_templates().items() if calls}
    assert sent == set(messages.names()), (
        f"unused templates: {sorted(set(messages.names()) - sent)}; missing templates: {sorted(sent - set(messages.names()))}"
    )


def test_every_send_gives_exactly_the_variables_of_its_template_on_its_channel():
    problems = []
    for name, calls in sent_templates().items():
        found = messages.template(name)
        for call in calls:
            where = f"{call.path}:{call.line} {name}"
            if call.spread:
                problems.append(f"{where}: passes **values, write each variable out")
            elif call.variables != found.variables:
                problems.append(f"{where}: gives {sorted(call.variables)}, the template uses {sorted(found.variables)}")
            if (call.channel == "email") != found.is_email:
                problems.append(f"{where}: sent by {call.channel}, but the template {'has' if found.is_email else 'lacks'} «Тема:»")
    assert problems == []


def test_no_message_text_is_left_in_the_code():
    """Texts are written only through templates: nobody but outbox.py calls `enqueue_*`, and a module
    that sends messages holds no Russian string (docstrings and NOT_MESSAGES aside)."""
    problems = []
    for path in application_files():
        if path == OUTBOX or MESSAGES in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("enqueue_email", "enqueue_sms"):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.attr}: send a template with outbox.email/sms")
        if not sends(path):
            continue
        skipped = set()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skipped.add(id(body[0].value))  # a docstring
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in NOT_MESSAGES:
                skipped.update(id(inner) for inner in ast.walk(node))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped
                    and CYRILLIC.search(node.value)):
                problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}: move it to a template")
    assert problems == []


def test_the_source_rules_catch_what_they_are_for(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        'async def f(to, n, v):\n'
        '    await outbox.email(to, "a" if n else "b", code=1)\n'
        '    await outbox.sms(to, n, **v)\n', encoding="utf-8",
    )
    calls = sends(source, root=tmp_path)
    assert [(c.channel, c.names, c.variables, c.spread) for c in calls] == [
        ("email", ["a", "b"], {"code"}, False), ("sms", None, set(), True),
    ]


def test_a_missing_or_unknown_variable_is_an_error_not_an_empty_string():
    values = {"code": "123456", "minutes": 15}
    assert messages.render("sign_up_code_sms", **values).text == (
        "Код подтверждения: 123456. Регистрация в личном кабинете, код действует 15 минут."
    )
    with pytest.raises(messages.MessageError, match=r"missing variables \['minutes'\]"):
        messages.render("sign_up_code_sms", code="123456")
    with pytest.raises(messages.MessageError, match=r"unknown variables \['extra'\]"):
        messages.render("sign_up_code_sms", **values, extra="x")
    with pytest.raises(messages.MessageError, match="NoneType"):
        messages.render("sign_up_code_sms", code=None, minutes=15)
    with pytest.raises(messages.MessageError, match="No message template"):
        messages.render("no_such_message")


def test_a_value_is_put_in_as_it_is():
    """A `$` or braces in a value (a rejection reason) are text, not placeholders."""
    message = messages.render("organization_rejected", inn="7707083893", reason="${inn} {x} $$")
    assert "Причина: ${inn} {x} $$\n" in message.text
    assert message.subject == "Организация не прошла модерацию"


async def test_outbox_refuses_an_sms_template_as_an_e_mail_and_back():
    from resolvers.common import outbox

    with pytest.raises(messages.MessageError, match="is an SMS"):
        await outbox.email("a@example.com", "sign_up_code_sms", code="1", minutes=1)
    with pytest.raises(messages.MessageError, match="is an e-mail"):
        await outbox.sms("+79990000000", "sign_up_code_email", code="1", minutes=1)
