"""The rule language: an expression is parsed into a small typed tree, and nothing is ever executed.

Python's own parser reads the text (``ast.parse``, which builds a syntax tree and runs nothing); a strict
whitelist then turns that tree into the nodes below, refusing every other construct (attributes,
subscripts, strings, lambdas, ``**``...), so the language is exactly: numbers, ``true``/``false``, the
strategy's parameters, the columns ``open high low close volume``, ``+ - * /``, comparisons, ``and or
not``, parentheses and the functions of ``FUNCTIONS``. Lookahead cannot be written: no function looks
forward (``shift`` takes a constant lag of zero or more) and no column holds a future value.

Each node has a kind, checked when the tree is built: a *number* (a constant: numbers, parameters and
arithmetic on them), a *series* (one value per bar) or a *condition* (true or false per bar, or a
constant truth). Errors say where they are (1-based column) and, for unknown names, the nearest known one.
"""

import ast
import difflib
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from quantdesk.core.errors import ValidationFailed

MAX_LENGTH = 2_000
MAX_DEPTH = 32
COLUMNS = ("open", "high", "low", "close", "volume")
LITERALS = {"true": True, "false": False}
BARS_HELD = "bars_held"


class Kind(Enum):
    number = "a number"
    series = "a series"
    condition = "a condition"


class Arg(Enum):
    """What a function's argument must be."""

    values = "a number or a series"  # the data a function works on
    window = "a whole number of bars, 1 or more"  # a constant
    lag = "a whole number of bars, 0 or more"  # a constant
    factor = "a number"  # a constant, e.g. Bollinger's k


@dataclass(frozen=True)
class Function:
    args: tuple[Arg, ...]
    result: Kind
    optional: int = 0  # trailing arguments that may be left out (returns' n)


_V, _W, _L, _F = Arg.values, Arg.window, Arg.lag, Arg.factor
FUNCTIONS: dict[str, Function] = {
    "sma": Function((_V, _W), Kind.series),
    "ema": Function((_V, _W), Kind.series),
    "rsi": Function((_V, _W), Kind.series),
    "macd_line": Function((_V, _W, _W), Kind.series),
    "macd_signal": Function((_V, _W, _W, _W), Kind.series),
    "macd_hist": Function((_V, _W, _W, _W), Kind.series),
    "bb_upper": Function((_V, _W, _F), Kind.series),
    "bb_middle": Function((_V, _W), Kind.series),
    "bb_lower": Function((_V, _W, _F), Kind.series),
    "atr": Function((_W,), Kind.series),
    "highest": Function((_V, _W), Kind.series),
    "lowest": Function((_V, _W), Kind.series),
    "shift": Function((_V, _L), Kind.series),
    "rolling_mean": Function((_V, _W), Kind.series),
    "rolling_std": Function((_V, _W), Kind.series),
    "returns": Function((_V, _W), Kind.series, optional=1),
    "abs": Function((_V,), Kind.series),
    "min": Function((_V, _V), Kind.series),
    "max": Function((_V, _V), Kind.series),
    "crosses_above": Function((_V, _V), Kind.condition),
    "crosses_below": Function((_V, _V), Kind.condition),
}
# Functions of constants that stay constants (the rest of FUNCTIONS needs bars).
CONSTANT_FOLDING = frozenset({"abs", "min", "max"})


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Truth:
    value: bool


@dataclass(frozen=True)
class Param:
    name: str


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple["Node", ...]


@dataclass(frozen=True)
class Arith:
    op: str  # + - * /
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Negate:
    operand: "Node"


@dataclass(frozen=True)
class Compare:
    op: str  # < <= > >= == !=
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Logic:
    op: str  # and, or
    terms: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    operand: "Node"


Node = Num | Truth | Param | Column | Call | Arith | Negate | Compare | Logic | Not


@dataclass(frozen=True)
class Expression:
    text: str
    tree: Node
    kind: Kind


@dataclass(frozen=True)
class Exit:
    """An exit rule: its condition (None when it is only a holding time) and its ``bars_held >= N`` term."""

    condition: Expression | None
    max_bars_held: Expression | None


_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_COMPARISONS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_REFUSED_OPERATORS = {
    ast.Pow: "**",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
}


class RuleError(ValidationFailed):
    """A rule that cannot be parsed or typed: ``errors`` holds the field, the position and the message."""


def parse(text: str, params: frozenset[str], field: str = "expression", want: Kind | None = None) -> Expression:
    """The typed tree of one expression, or a RuleError saying what is wrong and where."""
    return _Reader(text, params, field).expression(want)


def parse_exit(text: str, params: frozenset[str], field: str = "exit") -> Exit:
    """An exit: a condition, optionally or-ed at the top level with ``bars_held >= N`` (or ``> N``)."""
    reader = _Reader(text, params, field)
    node = reader.syntax()
    terms = node.values if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) else [node]
    held = [term for term in terms if isinstance(term, ast.Compare) and _is_holding_time(term)]
    if len(held) > 1:
        reader.fail(held[1], "bars_held may appear once")
    rest = [term for term in terms if term not in held]
    condition = None
    if rest:
        tree = rest[0] if len(rest) == 1 else ast.BoolOp(op=ast.Or(), values=rest)
        ast.copy_location(tree, rest[0])
        condition = reader.typed(tree, Kind.condition)
    max_bars = None
    if held:
        compare = held[0]
        bound = reader.typed(compare.comparators[0], Kind.number)
        if isinstance(compare.ops[0], ast.Gt):  # bars_held > N is bars_held >= N + 1
            bound = Expression(bound.text, Arith("+", bound.tree, Num(1.0)), Kind.number)
        max_bars = bound
    return Exit(condition, max_bars)


def _is_holding_time(node: ast.Compare) -> bool:
    return (
        isinstance(node.left, ast.Name)
        and node.left.id == BARS_HELD
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.GtE | ast.Gt)
    )


class _Reader:
    """Reads one expression: Python's syntax tree in, the typed tree out, with positions for errors."""

    def __init__(self, text: str, params: frozenset[str], field: str) -> None:
        self.text, self.params, self.field = text, params, field
        # One line for the parser, with every character where it was: positions stay those of the text.
        self.line = "".join(" " if ch in "\r\n\t" else ch for ch in text)

    def expression(self, want: Kind | None) -> Expression:
        node = self.syntax()
        typed = self.typed(node, want)
        return typed

    def syntax(self) -> ast.expr:
        if not self.line.strip():
            raise self.error(1, "the expression is empty")
        if len(self.text) > MAX_LENGTH:
            raise self.error(MAX_LENGTH, f"the expression is {len(self.text):,} characters; at most {MAX_LENGTH:,}")
        indent = len(self.line) - len(self.line.lstrip())
        try:
            tree = ast.parse(self.line.lstrip(), mode="eval")
        except SyntaxError as exc:
            if not exc.offset:  # the parser ran out of text
                raise self.error(len(self.text), "the expression ends too soon (a value is missing)") from None
            at = indent + exc.offset
            raise self.error(min(at, len(self.text)), f"syntax error: {exc.msg}") from None
        except (ValueError, RecursionError, MemoryError):
            raise self.error(1, "the expression cannot be read (nested too deeply?)") from None
        return tree.body

    def typed(self, node: ast.expr, want: Kind | None) -> Expression:
        tree, kind = self.convert(node, 0)
        if want is Kind.condition and kind is not Kind.condition:
            self.fail(node, f"a condition (true or false per bar) is needed here, not {kind.value}")
        if want is Kind.number and kind is not Kind.number:
            self.fail(node, f"a constant number (numbers, parameters and + - * /) is needed here, not {kind.value}")
        if want is Kind.series and kind is Kind.condition:
            self.fail(node, "a number or a series is needed here, not a condition")
        return Expression(self.text, tree, kind)

    def position(self, node: ast.AST) -> int:
        """1-based, in characters of the text (the parser counts bytes of UTF-8 of the stripped line)."""
        stripped = self.line.lstrip()
        offset = getattr(node, "col_offset", 0)
        return len(self.line) - len(stripped) + len(stripped.encode()[:offset].decode(errors="ignore")) + 1

    def error(self, at: int, message: str) -> RuleError:
        return RuleError(
            f"{self.field} at {at}: {message}",
            [{"field": self.field, "position": at, "message": message}],
        )

    def fail(self, node: ast.AST, message: str) -> NoReturn:
        raise self.error(self.position(node), message)

    def convert(self, node: ast.expr, depth: int) -> tuple[Node, Kind]:
        if depth > MAX_DEPTH:
            self.fail(node, f"the expression nests more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.BinOp):
            return self.arithmetic(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.Compare):
            return self.compare(node, depth)
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            terms = tuple(self.condition(term, depth + 1, op) for term in node.values)
            return Logic(op, terms), Kind.condition
        self.fail(node, f"{_describe(node)} is not part of the rule language")

    def constant(self, node: ast.Constant) -> tuple[Node, Kind]:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(node, f"{value!r} is not a number; the rule language has numbers, true and false only")
        return Num(float(value)), Kind.number

    def name(self, node: ast.Name) -> tuple[Node, Kind]:
        name = node.id
        if name in LITERALS:
            return Truth(LITERALS[name]), Kind.condition
        if name in COLUMNS:
            return Column(name), Kind.series
        if name in self.params:
            return Param(name), Kind.number
        if name == BARS_HELD:
            self.fail(node, "bars_held is allowed only in an exit, as an `or` term: `... or bars_held >= 20`")
        if name in FUNCTIONS:
            self.fail(node, f"{name} is a function: call it, e.g. {name}(...)")
        known = [*COLUMNS, *sorted(self.params), *LITERALS]
        self.fail(node, f"unknown name '{name}'{_nearest(name, known)}; known: {', '.join(known)}")

    def call(self, node: ast.Call, depth: int) -> tuple[Node, Kind]:
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the rule language's functions can be called, by name")
        name = node.func.id
        spec = FUNCTIONS.get(name)
        if spec is None:
            self.fail(node, f"unknown function '{name}'{_nearest(name, list(FUNCTIONS))}")
        if node.keywords:
            self.fail(node.keywords[0], f"{name} takes its arguments by position, without names")
        given, most = len(node.args), len(spec.args)
        if not most - spec.optional <= given <= most:
            count = f"{most - spec.optional} or {most}" if spec.optional else str(most)
            self.fail(node, f"{name} takes {count} argument(s), got {given}")
        args, kinds = [], []
        for arg, role in zip(node.args, spec.args, strict=False):
            tree, kind = self.argument(name, arg, role, depth + 1)
            args.append(tree)
            kinds.append(kind)
        if given < most:
            args.append(Num(1.0))  # returns(x) is returns(x, 1)
            kinds.append(Kind.number)
        if name in CONSTANT_FOLDING and all(kind is Kind.number for kind in kinds):
            return Call(name, tuple(args)), Kind.number
        return Call(name, tuple(args)), spec.result

    def argument(self, function: str, node: ast.expr, role: Arg, depth: int) -> tuple[Node, Kind]:
        tree, kind = self.convert(node, depth)
        if kind is Kind.condition:
            self.fail(node, f"{function} needs {role.value} here, not a condition")
        if role is not Arg.values and kind is not Kind.number:
            self.fail(node, f"{function} needs {role.value} here (a number or a parameter), not a series")
        if role is Arg.lag and isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self.fail(node, "shift looks back only: its lag must be 0 or more (no lookahead)")
        return tree, kind

    def arithmetic(self, node: ast.BinOp, depth: int) -> tuple[Node, Kind]:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            symbol = _REFUSED_OPERATORS.get(type(node.op), type(node.op).__name__)
            self.fail(node, f"'{symbol}' is not part of the rule language; use + - * /")
        left, left_kind = self.numeric(node.left, depth + 1, op)
        right, right_kind = self.numeric(node.right, depth + 1, op)
        both_numbers = left_kind is Kind.number and right_kind is Kind.number
        return Arith(op, left, right), Kind.number if both_numbers else Kind.series

    def numeric(self, node: ast.expr, depth: int, op: str) -> tuple[Node, Kind]:
        tree, kind = self.convert(node, depth)
        if kind is Kind.condition:
            self.fail(node, f"'{op}' needs numbers or series on both sides, not a condition")
        return tree, kind

    def condition(self, node: ast.expr, depth: int, op: str) -> Node:
        tree, kind = self.convert(node, depth)
        if kind is not Kind.condition:
            self.fail(node, f"'{op}' needs conditions on both sides, not {kind.value} (compare it with something)")
        return tree

    def unary(self, node: ast.UnaryOp, depth: int) -> tuple[Node, Kind]:
        if isinstance(node.op, ast.Not):
            return Not(self.condition(node.operand, depth + 1, "not")), Kind.condition
        if isinstance(node.op, ast.USub | ast.UAdd):
            tree, kind = self.numeric(node.operand, depth + 1, "-")
            return (Negate(tree) if isinstance(node.op, ast.USub) else tree), kind
        self.fail(node, "'~' is not part of the rule language; use not")

    def compare(self, node: ast.Compare, depth: int) -> tuple[Node, Kind]:
        if len(node.ops) > 1:
            self.fail(node, "compare two things at a time: write `a < b and b < c`, not `a < b < c`")
        op = _COMPARISONS.get(type(node.ops[0]))
        if op is None:
            self.fail(node, "only < <= > >= == != compare")
        left, _left_kind = self.numeric(node.left, depth + 1, op)
        right, _right_kind = self.numeric(node.comparators[0], depth + 1, op)
        return Compare(op, left, right), Kind.condition


def _nearest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "'.' (an attribute)",
        ast.Subscript: "'[...]' (indexing)",
        ast.Lambda: "lambda",
        ast.IfExp: "'if ... else'",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.NamedExpr: "':='",
    }
    return names.get(type(node), f"'{type(node).__name__}'")
