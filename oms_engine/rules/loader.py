"""Loading rule files and directories into validated Rulesets."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from .catalog import ActionCatalog
from .errors import RuleError, RulesetInvalid
from .facts import ANY_TYPE
from .model import Ruleset
from .parse import FileParser
from .schema import FactSchema
from .yaml_source import LMap, YamlProblem, load_located

SchemaChoice = Mapping[str, FactSchema] | FactSchema | None
CatalogChoice = Mapping[str, ActionCatalog] | ActionCatalog | None


def _parse(
    data: bytes, filename: str, schema: FactSchema | None, actions: ActionCatalog | None
) -> tuple[Ruleset | None, list[RuleError]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [RuleError(filename, None, None, f"file is not UTF-8: {exc}")]
    problems: list[YamlProblem] = []
    try:
        tree = load_located(text, problems)
    except YamlProblem as exc:
        return None, [RuleError(filename, exc.line, None, exc.message)]
    parser = FileParser(filename, schema, actions=actions)
    top = parser.parse_top(tree)
    # A refused YAML node is read as null; don't also report what the parser thinks of that null.
    bad_lines = {p.line for p in problems}
    errors = [RuleError(filename, p.line, None, p.message) for p in problems]
    errors += [e for e in parser.errors if e.line not in bad_lines]
    if top is None or errors:
        return None, sorted(errors, key=lambda e: e.line or 0)
    name, description, mode, rules = top
    # Only the fields the rules read are projected and checked before each
    # evaluation: a schema can be large while a ruleset reads a handful.
    field_types: dict[str, str] = dict(parser.used)
    for path, use in parser.implied.items():
        if schema is None or use.kind == ANY_TYPE:
            field_types.setdefault(path, use.kind)
    lists = list(dict.fromkeys(parser.lists_used))
    ruleset = Ruleset(
        name=name,
        description=description,
        mode=mode,  # type: ignore[arg-type]
        rules=tuple(rules),
        path=filename,
        version=hashlib.sha256(data).hexdigest()[:16],
        source=text,
        field_types=field_types,
        list_paths=tuple(lists),
    )
    return ruleset, _engine_errors(ruleset)


def _engine_errors(ruleset: Ruleset) -> list[RuleError]:
    """Rules the compiler cannot fit within durable_rules' limits (see compiler.py).

    The check is made in Python: a definition durable_rules refuses leaks memory in
    its C engine, so the loader never asks durable_rules to compile anything.
    """
    from .compiler import compile_problems

    return [RuleError(ruleset.path, p.rule.line, p.rule.name, p.message) for p in compile_problems(ruleset)]


def load_ruleset_text(
    text: str, *, filename: str, schema: FactSchema | None = None, actions: ActionCatalog | None = None
) -> Ruleset:
    ruleset, errors = _parse(text.encode("utf-8"), filename, schema, actions)
    if errors or ruleset is None:
        raise RulesetInvalid(errors)
    return ruleset


def load_ruleset_file(
    path: str | Path, *, schema: FactSchema | None = None, actions: ActionCatalog | None = None
) -> Ruleset:
    ruleset, errors = _parse(Path(path).read_bytes(), str(path), schema, actions)
    if errors or ruleset is None:
        raise RulesetInvalid(errors)
    return ruleset


def _peek_name(data: bytes) -> tuple[str | None, int]:
    """Ruleset name (and its line) without validation, to pick the schema/catalog."""
    try:
        tree = load_located(data.decode("utf-8"))
    except (YamlProblem, UnicodeDecodeError):
        return None, 1
    if not isinstance(tree, LMap):
        return None, 1
    name = tree.get("ruleset")
    return (name if isinstance(name, str) else None), tree.line_of("ruleset")


def _choose(choice: Mapping[str, object] | object | None, name: str | None) -> object | None:
    if isinstance(choice, Mapping):
        return choice.get(name) if name is not None else None
    return choice


def load_rules_dir(
    directory: str | Path, *, schemas: SchemaChoice = None, actions: CatalogChoice = None
) -> dict[str, Ruleset]:
    """Every *.yaml/*.yml directly in `directory` (the tests/ subfolder is not read).

    With a mapping, the schema/catalog is chosen by ruleset name; a ruleset without
    an entry is validated without one. Errors of all files are raised together.
    """
    result: dict[str, Ruleset] = {}
    errors: list[RuleError] = []
    files = sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    for path in files:
        data = path.read_bytes()
        name, name_line = _peek_name(data)
        schema = _choose(schemas, name)
        catalog = _choose(actions, name)
        ruleset, file_errors = _parse(data, str(path), schema, catalog)  # type: ignore[arg-type]
        errors.extend(file_errors)
        if ruleset is None or file_errors:
            continue
        if ruleset.name in result:
            errors.append(
                RuleError(
                    str(path),
                    name_line,
                    None,
                    f"duplicate ruleset name '{ruleset.name}' (also in {result[ruleset.name].path})",
                )
            )
            continue
        result[ruleset.name] = ruleset
    if errors:
        raise RulesetInvalid(errors)
    return result
