"""A rule strategy: a document of parameters and expressions, compiled into a ``Strategy``.

    {"name": "rsi_dip",
     "params": {"n": {"default": 14, "min": 2, "max": 100}, "lo": {"default": 30, "min": 1, "max": 50}},
     "entry": "crosses_below(rsi(close, n), lo)",
     "exit": "crosses_above(rsi(close, n), 70) or bars_held >= 20",
     "stop_loss_pct": 5}

Optional: ``description``, ``exit`` (never, when left out), ``short_entry`` and ``short_exit`` (a long/short
run without them mirrors the long rules, as the built-ins do), ``constraints`` (conditions on parameters
alone, e.g. ``"fast < slow"``: combinations of a sweep that break one are skipped), ``stop_loss_pct`` and
``take_profit_pct`` (used when a run gives none). A parameter takes ``default``, ``min``, ``max`` and
``integer`` (by default: whether default, min and max are all whole numbers). docs/strategies.md has it all.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from quantdesk.backtest import rule_eval, rule_syntax
from quantdesk.backtest.rule_syntax import Exit, Expression, Kind
from quantdesk.backtest.strategies import Decisions, Indicators, Param, Strategy
from quantdesk.core.errors import ValidationFailed

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_PARAMS = 20
MAX_CONSTRAINTS = 10
FIELDS = frozenset(
    {
        "name",
        "description",
        "params",
        "entry",
        "exit",
        "short_entry",
        "short_exit",
        "constraints",
        "stop_loss_pct",
        "take_profit_pct",
    }
)


@dataclass(frozen=True)
class Rules:
    entry: Expression
    exit: Exit
    short_entry: Expression | None
    short_exit: Expression | None
    constraints: tuple[Expression, ...]

    def trees(self) -> list[rule_syntax.Node]:
        """Every expression's tree (for checks of windows and for the warm-up)."""
        found = [self.entry.tree, *(c.tree for c in self.constraints)]
        for expression in (self.exit.condition, self.exit.max_bars_held, self.short_entry, self.short_exit):
            if expression is not None:
                found.append(expression.tree)
        return found


def compile_document(document: Mapping[str, Any], version: int | None = None) -> Strategy:
    """The strategy a document describes, or a ValidationFailed listing what to fix and where."""
    unknown = sorted(set(document) - FIELDS)
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) {', '.join(unknown)}; a rule strategy has {', '.join(sorted(FIELDS))}"
        )
    name = _name(document.get("name"))
    params = param_table(document.get("params") or {})
    names = frozenset(params)
    rules = Rules(
        entry=rule_syntax.parse(_text(document, "entry"), names, "entry", Kind.condition),
        exit=_exit(document.get("exit"), names),
        short_entry=_optional(document, "short_entry", names),
        short_exit=_optional(document, "short_exit", names),
        constraints=_constraints(document.get("constraints") or [], names),
    )
    _check_defaults(rules, params)
    return Strategy(
        name=name,
        description=str(document.get("description") or f"rule strategy: {rules.entry.text}")[:500],
        params=params,
        build=lambda bars, p, cache: decide(rules, bars, p, cache),
        check=lambda p: problem(rules, p),
        lookback=lambda p: max(rule_eval.lookback(tree, p) for tree in rules.trees()),
        kind="rule",
        version=version,
        stop_loss_pct=_percent(document, "stop_loss_pct", 100),
        take_profit_pct=_percent(document, "take_profit_pct", 10_000),
        max_bars_held=lambda p: holding_limit(rules, p),
        source=dict(document),
    )


def decide(rules: Rules, bars: pd.DataFrame, params: dict[str, float], cache: Indicators) -> Decisions:
    evaluator = rule_eval.Evaluator(bars, cache)
    never = np.zeros(len(bars), dtype=bool)
    exits = evaluator.condition(rules.exit.condition.tree, params) if rules.exit.condition else never
    return Decisions(
        evaluator.condition(rules.entry.tree, params),
        exits,
        evaluator.condition(rules.short_entry.tree, params) if rules.short_entry else None,
        evaluator.condition(rules.short_exit.tree, params) if rules.short_exit else None,
    )


def problem(rules: Rules, params: dict[str, float]) -> str | None:
    """Why these parameters make no run: a broken constraint, or an invalid window."""
    for constraint in rules.constraints:
        if not bool(rule_eval.Evaluator(pd.DataFrame()).value(constraint.tree, params)):
            return f"the parameters break the constraint `{constraint.text}`"
    for tree in rules.trees():
        found = rule_eval.argument_problem(tree, params)
        if found:
            return found
    limit = holding_limit(rules, params)
    if not math.isnan(limit) and limit < 0:
        return f"bars_held must be compared with 0 or more, got {limit:g}"
    return None


def holding_limit(rules: Rules, params: dict[str, float]) -> float:
    if rules.exit.max_bars_held is None:
        return math.nan
    return math.ceil(rule_eval.constant(rules.exit.max_bars_held.tree, params))


def _name(value: object) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ValidationFailed(
            f"name {value!r} must be 1-40 characters of lower-case letters, digits and _, starting with a letter"
        )
    return value


def _text(document: Mapping[str, Any], field: str) -> str:
    value = document.get(field)
    if not isinstance(value, str):
        raise ValidationFailed(
            f'{field} must be an expression (text), e.g. "crosses_above(sma(close, 20), sma(close, 50))"'
        )
    return value


def _optional(document: Mapping[str, Any], field: str, names: frozenset[str]) -> Expression | None:
    if document.get(field) is None:
        return None
    return rule_syntax.parse(_text(document, field), names, field, Kind.condition)


def _exit(value: object, names: frozenset[str]) -> Exit:
    if value is None:
        return Exit(None, None)
    if not isinstance(value, str):
        raise ValidationFailed(
            'exit must be an expression (text), e.g. "crosses_below(sma(close, 20), sma(close, 50))"'
        )
    return rule_syntax.parse_exit(value, names)


def _constraints(values: object, names: frozenset[str]) -> tuple[Expression, ...]:
    if not isinstance(values, list) or len(values) > MAX_CONSTRAINTS or not all(isinstance(v, str) for v in values):
        raise ValidationFailed(
            f'constraints must be a list of up to {MAX_CONSTRAINTS} conditions, e.g. ["fast < slow"]'
        )
    found = []
    for i, text in enumerate(values):
        field = f"constraints[{i}]"
        expression = rule_syntax.parse(text, names, field, Kind.condition)
        if not _on_parameters_only(expression.tree):
            raise ValidationFailed(f'{field}: a constraint compares parameters and numbers only, e.g. "fast < slow"')
        found.append(expression)
    return tuple(found)


def _on_parameters_only(tree: rule_syntax.Node) -> bool:
    if isinstance(tree, rule_syntax.Column | rule_syntax.Call) and not (
        isinstance(tree, rule_syntax.Call) and tree.function in rule_syntax.CONSTANT_FOLDING
    ):
        return False
    return all(_on_parameters_only(child) for child in rule_eval.children(tree))


def param_table(values: object) -> dict[str, Param]:
    if not isinstance(values, Mapping) or len(values) > MAX_PARAMS:
        raise ValidationFailed(f"params must be an object of up to {MAX_PARAMS} parameters by name")
    reserved = {
        *rule_syntax.COLUMNS,
        *rule_syntax.FUNCTIONS,
        *rule_syntax.LITERALS,
        rule_syntax.BARS_HELD,
        "and",
        "or",
        "not",
    }
    params = {}
    for key, spec in values.items():
        if not isinstance(key, str) or not NAME.match(key) or key in reserved:
            raise ValidationFailed(
                f"parameter name {key!r} must be lower-case letters, digits and _, "
                "and not a column, function or keyword"
            )
        params[key] = _param(key, spec)
    return params


def _param(key: str, spec: object) -> Param:
    if not isinstance(spec, Mapping) or "default" not in spec:
        raise ValidationFailed(
            f"params.{key} must be an object with default (and min, max, integer), "
            'e.g. {"default": 14, "min": 2, "max": 100}'
        )
    unknown = sorted(set(spec) - {"default", "min", "max", "integer"})
    if unknown:
        raise ValidationFailed(
            f"params.{key}: unknown field(s) {', '.join(unknown)}; a parameter has default, min, max, integer"
        )
    try:
        default = float(spec["default"])
        low = float(spec.get("min", default))
        high = float(spec.get("max", default))
    except (TypeError, ValueError):
        raise ValidationFailed(f"params.{key}: default, min and max must be numbers") from None
    if not all(math.isfinite(v) for v in (default, low, high)) or not low <= default <= high:
        raise ValidationFailed(f"params.{key}: min <= default <= max must hold, with finite numbers")
    integer = spec.get("integer", all(float(v).is_integer() for v in (default, low, high)))
    if not isinstance(integer, bool):
        raise ValidationFailed(f"params.{key}.integer must be true or false")
    if integer and not default.is_integer():
        raise ValidationFailed(f"params.{key}: an integer parameter needs a whole default, got {default:g}")
    return Param(default, low, high, integer)


def _percent(document: Mapping[str, Any], field: str, most: float) -> float | None:
    value = document.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= most:
        raise ValidationFailed(f"{field} must be a percentage above 0 and at most {most:g}, got {value!r}")
    return float(value)


def _check_defaults(rules: Rules, params: dict[str, Param]) -> None:
    """The defaults must make a valid run: a document whose own defaults fail is refused when stored."""
    defaults = {key: spec.default for key, spec in params.items()}
    found = problem(rules, defaults)
    if found:
        raise ValidationFailed(f"with the default parameters, {found}")
