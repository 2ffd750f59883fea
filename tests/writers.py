"""Who writes a model's owned fields: the code reader behind the one-owner tests
(tests/test_*_lifecycle.py, tests/test_subscription_period.py).

Each such test names the one module allowed to write some fields of a model (a session's status, an
update run, an invite, a subscription's period) and scans the application's sources for any other
place that does. The sources are read as Python (ast), so a comment or a string naming these calls
does not count, and a new way of writing does."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("kabinet", "resolvers", "workers", "schema", "models", "bench", "scripts")
CREATES = {"create", "bulk_create", "get_or_create", "update_or_create", "bulk_update"}


def root_name(node: ast.AST) -> str | None:
    """The name a chain like `Session.filter(...).select_for_update().update` starts from."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node.id if isinstance(node, ast.Name) else None


@dataclass(frozen=True)
class Owned:
    """What writing some fields of a model looks like in source.

    models: the model classes (`Session`), whose create/bulk_create/… and `.update(field=…)` write;
    fields: the fields owned (`status`), whose assignment on a row writes;
    is_row: whether a variable's name holds one of the model's rows (`session`, `run`): its `.save()`
      and its owned fields' assignment write;
    enum: a value naming the owned state (`SessionStatus`): assigning it to any `.status` writes;
    whole_row: every update and delete of the model writes, not only one naming an owned field;
    creates_any: every create writes; else only one naming an owned field (or `**values`);
    saves_any: a row's `.save()` writes whatever it names; else only one saving an owned field
      (or every field);
    querysets: source fragments that mark a chain as the model's query (`.fenced(`);
    table: the SQL table, whose UPDATE / INSERT INTO in a string writes;
    keyed: in a function naming a model, a dict naming an owned field (`{"starts_on": …}`,
      `dict(starts_on=…)`) writes: the values a generic writer (setattr) is handed."""

    models: frozenset[str]
    fields: frozenset[str]
    is_row: Callable[[str], bool]
    enum: str | None = None
    whole_row: bool = False
    creates_any: bool = True
    saves_any: bool = True
    querysets: tuple[str, ...] = ()
    table: str | None = None
    keyed: bool = False

    def _names_owned(self, call: ast.Call) -> bool:
        """The call names an owned field, or hands over values it does not spell out (`**values`)."""
        return any(k.arg is None or k.arg in self.fields for k in call.keywords)

    def _saves_owned(self, call: ast.Call) -> bool:
        if self.saves_any:
            return True
        named = next((k.value for k in call.keywords if k.arg == "update_fields"), None)
        if named is None:
            return True
        strings = {n.value for n in ast.walk(named) if isinstance(n, ast.Constant)}
        return not isinstance(named, (ast.List, ast.Tuple, ast.Set)) or bool(strings & self.fields)

    def writes(self, source: str) -> list[str]:
        """Where `source` writes the owned fields: ["line: what", …]."""
        tree = ast.parse(source)
        found = [*self._calls_and_assignments(tree), *self._keyed(tree)]
        if self.table:
            sql = re.compile(rf"\b(UPDATE|INSERT\s+INTO)\s+\"?{self.table}\"?\s", re.IGNORECASE)
            found += [
                f"{node.lineno}: SQL writing the {self.table} table"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and sql.search(node.value)
            ]
        return found

    def _calls_and_assignments(self, tree: ast.AST) -> list[str]:
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                method, root = node.func.attr, root_name(node.func.value)
                of_model = root in self.models
                if of_model and method in CREATES and (
                    self.creates_any or method.startswith("bulk_") or self._names_owned(node)
                ):
                    found.append(f"{node.lineno}: {root}….{method}(…)")
                elif method in ("update", "delete") and (
                    of_model or any(q in ast.unparse(node.func.value) for q in self.querysets)
                ) and (self.whole_row or (method == "update" and self._names_owned(node))):
                    found.append(f"{node.lineno}: {root}….{method}(…)")
                elif method == "save" and root is not None and (of_model or self.is_row(root)) and self._saves_owned(node):
                    found.append(f"{node.lineno}: {root}….save(…)")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                name = node.args[1] if len(node.args) >= 2 else None
                if isinstance(name, ast.Constant) and name.value in self.fields and self.is_row(root_name(node.args[0]) or ""):
                    found.append(f"{node.lineno}: setattr(…, {name.value!r}, …)")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                flat = [t for target in targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
                value = ast.unparse(node.value) if node.value is not None else ""
                for target in flat:
                    if isinstance(target, ast.Attribute) and target.attr in self.fields and (
                        (self.enum is not None and self.enum in value) or self.is_row(root_name(target.value) or "")
                    ):
                        found.append(f"{node.lineno}: {ast.unparse(target)} = …")
        return found

    def _keyed(self, tree: ast.AST) -> list[str]:
        if not self.keyed:
            return []
        found = []
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not any(isinstance(n, ast.Name) and n.id in self.models for n in ast.walk(function)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value in self.fields for k in node.keys
                ):
                    found.append(f"{node.lineno}: {{…owned field: …}} beside {'/'.join(sorted(self.models))}")
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and any(
                    k.arg in self.fields for k in node.keywords
                ):
                    found.append(f"{node.lineno}: dict(owned field=…) beside {'/'.join(sorted(self.models))}")
        return sorted(set(found))


def writers(owned: Owned, owner: Path) -> dict[str, list[str]]:
    """Every application module but the owner (and migrations) that writes the owned fields."""
    found: dict[str, list[str]] = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative == owner or "migrations" in relative.parts:
                continue
            if where := owned.writes(path.read_text(encoding="utf-8")):
                found[str(relative)] = where
    return found
