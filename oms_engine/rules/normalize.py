"""Rewrites used by the compiler: negation push-down and normal forms.

durable_rules has no `$not` and no `$in`, and an `$or` *inside* `$iall`/`$iany`
is broken: `$iall` over an `$or` of two different fields ignores the first
branch, and creating a ruleset with `$iall`/`$iany` over an `$or` fails with
error 102 whenever recycled memory holds one particular byte (rete.c leaves a
node type uninitialised). So no `$or` is ever put inside a list quantifier:

* `not` is pushed to the leaves (De Morgan, eq<->ne, gt<->lte, ...). Leaves on a
  missing field are "unknown" and never true, in both polarities; this matches
  Kleene three-valued logic, which is what `evaluate_reference` implements.
* `in`/`not_in` with one value become `eq`/`ne`; with several they stay one
  leaf, which the facade evaluates in Python and posts as a boolean flag, like
  `matches` (a flag is absent when its field is missing, so it stays unknown).
* an `any_item` body is put in DNF and split into one `$iany` per conjunction;
  an `all_items` body is put in CNF and split into one `$iall` per clause. A CNF
  clause may only OR equalities on one field: it becomes one membership flag.
  Anything else is rejected at load time with a message, rather than silently
  mis-evaluated.
"""

from __future__ import annotations

from itertools import product

from .model import AllItems, Always, And, AnyItem, Compare, Condition, Exists, Not, Or

MAX_TERMS = 64

_NEGATED_OP = {
    "eq": "ne",
    "ne": "eq",
    "gt": "lte",
    "lte": "gt",
    "lt": "gte",
    "gte": "lt",
    "in": "not_in",
    "not_in": "in",
    "matches": "not_matches",  # internal op: compiled as "match flag is false"
    "not_matches": "matches",
}


class NotCompilable(ValueError):
    """The condition is valid but the rule engine cannot express it faithfully."""


def nnf(cond: Condition, negate: bool = False) -> Condition:
    """Negation normal form with `in`/`not_in` expanded; `Always` only at the root."""
    if isinstance(cond, Not):
        return nnf(cond.part, not negate)
    if isinstance(cond, Always):
        if negate:
            raise NotCompilable("'not' of an always-true condition never matches")
        return cond
    if isinstance(cond, Exists):
        return Exists(cond.path, cond.present != negate)
    if isinstance(cond, Compare):
        return _expand(_negate_compare(cond) if negate else cond)
    if isinstance(cond, And | Or):
        parts = tuple(nnf(p, negate) for p in cond.parts)
        flip = isinstance(cond, And) == negate  # De Morgan: and->or when negated
        return _flatten(Or(parts) if flip else And(parts))
    if isinstance(cond, AnyItem):
        body = nnf(cond.part, negate)
        return AllItems(cond.list_path, body) if negate else AnyItem(cond.list_path, body)
    if isinstance(cond, AllItems):
        body = nnf(cond.part, negate)
        return AnyItem(cond.list_path, body) if negate else AllItems(cond.list_path, body)
    raise TypeError(f"unknown condition {cond!r}")


def _negate_compare(cond: Compare) -> Compare:
    return Compare(cond.path, _NEGATED_OP[cond.op], cond.value)  # type: ignore[arg-type]


def _expand(cond: Compare) -> Condition:
    if cond.op in ("in", "not_in"):
        values = tuple(dict.fromkeys(cond.value))
        if len(values) == 1:
            return Compare(cond.path, "eq" if cond.op == "in" else "ne", values[0])
        return Compare(cond.path, cond.op, values)
    return cond


def _flatten(cond: And | Or) -> Condition:
    kind = type(cond)
    parts: list[Condition] = []
    for part in cond.parts:
        parts.extend(part.parts if isinstance(part, kind) else (part,))
    return parts[0] if len(parts) == 1 else kind(tuple(parts))


def _terms(cond: Condition, outer: type[And] | type[Or]) -> list[list[Condition]]:
    """Normal form as a list of inner groups: DNF when outer is Or, CNF when outer is And."""
    inner: type[And] | type[Or] = And if outer is Or else Or
    if isinstance(cond, outer):
        result: list[list[Condition]] = []
        for part in cond.parts:
            result.extend(_terms(part, outer))
    elif isinstance(cond, inner):
        result = []
        for combo in product(*(_terms(part, outer) for part in cond.parts)):
            result.append([leaf for group in combo for leaf in group])
            if len(result) > MAX_TERMS:
                break
    else:
        result = [[cond]]
    result = _dedupe(result)
    if len(result) > MAX_TERMS:
        raise NotCompilable(f"condition inside a line quantifier is too complex (more than {MAX_TERMS} terms)")
    return result


def _dedupe(groups: list[list[Condition]]) -> list[list[Condition]]:
    # Expansion repeats leaves and groups; durable_rules caps expressions per rule.
    unique: dict[tuple[Condition, ...], None] = {}
    for group in groups:
        unique.setdefault(tuple(dict.fromkeys(group)), None)
    return [list(group) for group in unique]


def item_dnf(body: Condition) -> list[list[Condition]]:
    groups = _terms(body, Or)
    _check_leaves(groups)
    return groups


def item_cnf(body: Condition) -> list[Condition]:
    """The clauses of `body` in CNF, each as one leaf (an OR of equalities becomes `in`)."""
    groups = _terms(body, And)
    _check_leaves(groups)
    clauses: list[Condition] = []
    for clause in groups:
        if len(clause) == 1:
            clauses.append(clause[0])
        elif _same_field_equalities(clause):
            clauses.append(_membership(clause))
        else:
            raise NotCompilable(
                "all_lines cannot OR conditions on different fields or with operators other than "
                "equality (rule engine limitation); express it with any_line/not or split the rule"
            )
    return list(dict.fromkeys(clauses))


def _same_field_equalities(clause: list[Condition]) -> bool:
    paths = {c.path for c in clause if isinstance(c, Compare)}
    return len(paths) == 1 and all(isinstance(c, Compare) and c.op in ("eq", "in") for c in clause)


def _membership(clause: list[Condition]) -> Compare:
    leaves = [c for c in clause if isinstance(c, Compare)]
    values = tuple(dict.fromkeys(v for c in leaves for v in (c.value if c.op == "in" else (c.value,))))
    path = leaves[0].path
    return Compare(path, "eq", values[0]) if len(values) == 1 else Compare(path, "in", values)


def _check_leaves(groups: list[list[Condition]]) -> None:
    for group in groups:
        for leaf in group:
            if isinstance(leaf, AnyItem | AllItems):
                raise NotCompilable("line quantifiers cannot be nested")
