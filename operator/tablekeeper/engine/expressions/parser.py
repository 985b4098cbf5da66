"""The one parser: recursive descent over the one token stream.

Three grammars share the path, placeholder and operand rules:

    condition  := or ;  or := and (OR and)* ;  and := not (AND not)*
    not        := NOT not | '(' or ')' | operand comparator operand
                | operand BETWEEN operand AND operand
                | operand IN '(' operand (',' operand)* ')' | function
    update     := (SET set (',' set)* | REMOVE path (',' path)*
                  | ADD path :v (',' path :v)* | DELETE path :v (',' path :v)*)+
    set        := path '=' value ;  value := operand (('+' | '-') operand)?
    projection := path (',' path)*
    operand    := '(' operand ')' | :value | name '(' operand (',' operand)* ')' | path
    path       := name ('.' name | '[' digits ']')*

A '(' can open either a condition group or a parenthesised operand, so the
parser backtracks there, PEG-style; a syntax error is reported at the
furthest token any alternative reached, which is where DynamoDB points.
Semantic errors are recorded (see ``validate.Diagnostics``) and the
top-ranked one raised after the whole text is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, NoReturn, TypeVar

from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.values import MISSING

from . import validate
from .ast import (
    COMPARATORS,
    Action,
    AddAction,
    And,
    Arithmetic,
    Condition,
    DeleteAction,
    IfNotExists,
    Invalid,
    ListAppend,
    Literal,
    Node,
    Not,
    Or,
    Path,
    PathElement,
    Projection,
    RemoveAction,
    SetAction,
    SetValue,
    UpdatePlan,
)
from .context import ExpressionContext
from .reserved import is_reserved
from .tokens import IDENT, NAME, NUMBER, PUNCT, VALUE, WS, Token, syntax_error_detail, tokenize
from .validate import Call, Diagnostics

T = TypeVar("T")

CONDITION_KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
UPDATE_CLAUSES: Final = ("SET", "REMOVE", "ADD", "DELETE")
# DynamoDB's lexer has these as keywords in every kind of expression: one of them where a name
# belongs is a syntax error (not a reserved word), in a projection as in an update.
KEYWORDS: Final = CONDITION_KEYWORDS | frozenset(UPDATE_CLAUSES)
MAX_LIST_INDEX: Final = 2**31 - 1  # DynamoDB's: a path's list index is a 32-bit integer
MAX_EXPRESSION_BYTES: Final = 4096  # DynamoDB's limit on any one expression string
MAX_PATH_DEPTH: Final = 32  # names and list indexes in one document path


class _SyntaxFailure(Exception):
    """Internal: no rule matched at this position of the full token list."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def _closing_parens(tokens: Sequence[Token]) -> dict[int, int]:
    """Index of each '(' -> index of its matching ')'."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for index, token in enumerate(tokens):
        if token.is_punct("("):
            stack.append(index)
        elif token.is_punct(")") and stack:
            closing[stack.pop()] = index
    return closing


class _Parser:
    """Token cursor, backtracking, and the rules every grammar shares."""

    keywords: frozenset[str] = KEYWORDS
    name_category = "name"
    value_category = "value"
    flags_redundant_parens = False

    def __init__(
        self, text: str, ctx: ExpressionContext, kind: str, ranking: Sequence[str]
    ) -> None:
        self.kind = kind
        self.ctx = ctx
        size = len(text.encode("utf-8"))
        if size > MAX_EXPRESSION_BYTES:  # before any work on it
            raise ValidationException(
                f"Invalid {kind}: Expression size has exceeded the maximum allowed size; "
                f"expression size: {size}"
            )
        self.tokens = tokenize(text)
        self.significant = [token for token in self.tokens if token.kind != WS]
        self.closing = _closing_parens(self.significant)
        self.pos = 0
        self.furthest = -1
        self.diag = Diagnostics(ranking)

    def run(self, grammar: Callable[[], T]) -> T:
        if not self.significant:
            raise ValidationException(f"Invalid {self.kind}: The expression can not be empty;")
        try:
            result = grammar()
            if self.pos < len(self.significant):
                self.fail()
        except _SyntaxFailure as failure:
            position = max(failure.position, self.furthest)
            detail = syntax_error_detail(self.tokens, position)
            raise ValidationException(f"Invalid {self.kind}: {detail}") from None
        message = self.diag.first()
        if message is not None:
            raise ValidationException(f"Invalid {self.kind}: {message}")
        return result

    # --- cursor -----------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.pos + ahead
        return self.significant[index] if index < len(self.significant) else None

    def advance(self) -> Token:
        token = self.peek()
        if token is None:
            self.fail()
        self.pos += 1
        return token

    def fail(self) -> NoReturn:
        token = self.peek()
        raise _SyntaxFailure(token.position if token is not None else len(self.tokens))

    def at_punct(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.is_punct(text)

    def accept_punct(self, text: str) -> bool:
        if self.at_punct(text):
            self.pos += 1
            return True
        return False

    def expect_punct(self, text: str) -> None:
        if not self.accept_punct(text):
            self.fail()

    def accept_keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.is_keyword(word):
            self.pos += 1
            return True
        return False

    def is_keyword(self, token: Token) -> bool:
        return token.kind == IDENT and token.text.upper() in self.keywords

    def attempt(self, rule: Callable[[], T]) -> T | None:
        """Try a rule; on a syntax failure rewind everything it did."""
        saved = (self.pos, self.diag.mark(), self.ctx.mark())
        try:
            return rule()
        except _SyntaxFailure as failure:
            self.furthest = max(self.furthest, failure.position)
            self.pos = saved[0]
            self.diag.reset(saved[1])
            self.ctx.reset(saved[2])
            return None

    # --- shared rules -------------------------------------------------------------

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_name()]
        while True:
            if self.accept_punct("."):
                elements.append(self.path_name())
            elif self.accept_punct("["):
                token = self.advance()
                if token.kind != NUMBER:
                    self.pos -= 1
                    self.fail()
                self.expect_punct("]")
                if len(token.text) > 10 or int(token.text) > MAX_LIST_INDEX:
                    raise ValidationException(
                        f"Invalid {self.kind}: List index is not within the allowable range; "
                        f"index: [{token.text}]"
                    )
                elements.append(int(token.text))
            else:
                if len(elements) > MAX_PATH_DEPTH:
                    self.diag.add("nesting", "The document path has too many nesting levels; "
                                             f"nesting levels: {len(elements)}")  # fmt: skip
                return Path(tuple(elements))

    def path_name(self) -> str:
        token = self.peek()
        if token is not None and token.kind == IDENT and not self.is_keyword(token):
            self.pos += 1
            if is_reserved(token.text):
                self.diag.add(
                    "reserved",
                    f"Attribute name is a reserved keyword; reserved keyword: {token.text}",
                )
            return token.text
        if token is not None and token.kind == NAME:
            self.pos += 1
            resolved = self.ctx.name(token.text)
            if resolved is None:
                self.diag.add(
                    self.name_category,
                    "An expression attribute name used in the document path is not defined; "
                    f"attribute name: {token.text}",
                )
                return token.text
            return resolved
        self.fail()

    def value_literal(self) -> Literal:
        token = self.advance()
        value = self.ctx.value(token.text)
        if value is MISSING:
            self.diag.add(
                self.value_category,
                "An expression attribute value used in expression is not defined; "
                f"attribute value: {token.text}",
            )
            return Literal(None)
        return Literal(value)  # type: ignore[arg-type]

    def operand(self) -> Node:
        """A raw operand: Path, Literal or Call (typed later by where it stands)."""
        token = self.peek()
        if token is None:
            self.fail()
        if token.is_punct("("):
            start = self.pos
            self.pos += 1
            inner = self.operand()
            self.expect_punct(")")
            self.check_redundant(start)
            return inner
        if token.kind == VALUE:
            return self.value_literal()
        following = self.peek(1)
        if (
            token.kind == IDENT
            and not self.is_keyword(token)
            and following is not None
            and following.is_punct("(")
        ):
            return self.call()
        return self.path()

    def call(self) -> Call:
        name = self.advance().text
        self.expect_punct("(")
        args = [self.operand()]
        while self.accept_punct(","):
            args.append(self.operand())
        self.expect_punct(")")
        return Call(name, tuple(args))

    def check_redundant(self, start: int) -> None:
        """'((x))': a group whose whole content is another group."""
        if not self.flags_redundant_parens:
            return
        inner = start + 1
        if self.significant[inner].is_punct("(") and self.closing.get(inner) == self.pos - 2:
            self.diag.add("parens", "The expression has redundant parentheses;")


class _ConditionParser(_Parser):
    name_category = "placeholder"
    value_category = "placeholder"
    flags_redundant_parens = True

    def condition(self) -> Condition | Invalid:
        left = self.and_condition()
        while self.accept_keyword("OR"):
            left = Or(left, self.and_condition())  # type: ignore[arg-type]
        return left

    def and_condition(self) -> Condition | Invalid:
        left = self.not_condition()
        while self.accept_keyword("AND"):
            left = And(left, self.not_condition())  # type: ignore[arg-type]
        return left

    def not_condition(self) -> Condition | Invalid:
        if self.accept_keyword("NOT"):
            return Not(self.not_condition())  # type: ignore[arg-type]
        if self.at_punct("("):
            grouped = self.attempt(self.group)
            if grouped is not None:
                return grouped
        return self.simple_condition()

    def group(self) -> Condition | Invalid:
        start = self.pos
        self.expect_punct("(")
        inner = self.condition()
        self.expect_punct(")")
        self.check_redundant(start)
        return inner

    def simple_condition(self) -> Condition | Invalid:
        left = self.operand()
        token = self.peek()
        if token is not None and token.kind == PUNCT and token.text in COMPARATORS:
            self.pos += 1
            return validate.build_compare(token.text, left, self.operand(), self.diag)
        if self.accept_keyword("BETWEEN"):
            low = self.operand()
            if not self.accept_keyword("AND"):
                self.fail()
            return validate.build_between(left, low, self.operand(), self.diag)
        if self.accept_keyword("IN"):
            self.expect_punct("(")
            options = [self.operand()]
            while self.accept_punct(","):
                options.append(self.operand())
            self.expect_punct(")")
            return validate.build_in(left, options, self.diag)
        if isinstance(left, Call):
            return validate.condition_from_call(left, self.diag)
        self.fail()


class _UpdateParser(_Parser):

    def update(self) -> UpdatePlan:
        actions: list[Action] = []
        seen: set[str] = set()
        while self.peek() is not None:
            token = self.peek()
            assert token is not None
            clause = token.text.upper() if token.kind == IDENT else ""
            if clause not in UPDATE_CLAUSES:
                self.fail()
            self.pos += 1
            if clause in seen:
                self.diag.add(
                    "section",
                    f'The "{clause}" section can only be used once in an update expression;',
                )
            seen.add(clause)
            rule = {
                "SET": self.set_action,
                "REMOVE": self.remove_action,
                "ADD": self.add_action,
                "DELETE": self.delete_action,
            }[clause]
            actions.append(rule())
            while self.accept_punct(","):
                actions.append(rule())
        validate.check_paths_disjoint([action.path for action in actions], self.diag)
        return UpdatePlan(tuple(actions))

    def set_action(self) -> SetAction:
        path = self.path()
        self.expect_punct("=")
        if self.at_punct("("):
            grouped = self.attempt(self.grouped_set_value)
            if grouped is not None:
                return SetAction(path, grouped)
        return SetAction(path, self.set_value())

    def grouped_set_value(self) -> SetValue:
        self.expect_punct("(")
        value = self.set_value()
        self.expect_punct(")")
        if self.at_punct("+") or self.at_punct("-"):
            self.fail()  # "(a) + b": the parentheses belonged to the operand
        return value

    def set_value(self) -> SetValue:
        left = validate.update_operand(self.operand(), self.diag)
        for op in ("+", "-"):
            if self.accept_punct(op):
                right = validate.update_operand(self.operand(), self.diag)
                validate.check_arithmetic(op, left, right, self.diag)
                return Arithmetic(op, _set_operand(left), _set_operand(right))
        return _set_operand(left)

    def remove_action(self) -> RemoveAction:
        return RemoveAction(self.path())

    def add_action(self) -> AddAction:
        path = self.path()
        value = self.clause_value("ADD")
        return AddAction(path, value)

    def delete_action(self) -> DeleteAction:
        path = self.path()
        value = self.clause_value("DELETE")
        return DeleteAction(path, value)

    def clause_value(self, clause: str) -> Literal:
        token = self.peek()
        if token is None or token.kind != VALUE:
            self.fail()
        mark = self.diag.mark()
        value = self.value_literal()
        if self.diag.mark() == mark:  # only type-check a value that exists
            validate.check_add_delete_operand(clause, value, self.diag)
        return value


def _set_operand(node: Node) -> IfNotExists | ListAppend | Path | Literal:
    if isinstance(node, Path | Literal | IfNotExists | ListAppend):
        return node
    return Path(("",))  # an Invalid already reported


class _ProjectionParser(_Parser):
    def projection(self) -> Projection:
        paths = [self.path()]
        while self.accept_punct(","):
            paths.append(self.path())
        validate.check_paths_disjoint(paths, self.diag)
        return Projection(tuple(paths))


def parse_condition(
    text: str, ctx: ExpressionContext, kind: str = "ConditionExpression"
) -> Condition:
    """Parse and validate a Condition, Filter or KeyCondition expression."""
    parser = _ConditionParser(text, ctx, kind, validate.CONDITION_RANKING)
    result = parser.run(parser.condition)
    assert not isinstance(result, Invalid)
    return result


def parse_update(text: str, ctx: ExpressionContext) -> UpdatePlan:
    """Parse and validate an UpdateExpression."""
    parser = _UpdateParser(text, ctx, "UpdateExpression", validate.UPDATE_RANKING)
    return parser.run(parser.update)


def parse_projection(text: str, ctx: ExpressionContext) -> Projection:
    """Parse and validate a ProjectionExpression."""
    parser = _ProjectionParser(text, ctx, "ProjectionExpression", validate.PROJECTION_RANKING)
    return parser.run(parser.projection)
