"""The one tokenizer for every expression kind.

Whitespace is kept as tokens, because DynamoDB's syntax errors quote the
text around the offending token ("near") including the blanks between
tokens.  A character that starts no token becomes a one-character UNKNOWN
token rather than an immediate error, so the parser reports it in the same
"Syntax error; token: ..., near: ..." shape as any other misplaced token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

WS: Final = "WS"
IDENT: Final = "IDENT"  # attribute name or keyword or function name: [A-Za-z][A-Za-z0-9_]*
NAME: Final = "NAME"  # #placeholder
VALUE: Final = "VALUE"  # :placeholder
NUMBER: Final = "NUMBER"  # digits, only meaningful inside [ ]
PUNCT: Final = "PUNCT"  # ( ) [ ] , . = <> < <= > >= + -
UNKNOWN: Final = "UNKNOWN"

EOF_TEXT: Final = "<EOF>"

# Order matters: two-character operators before their one-character prefixes.
_TOKEN_RE: Final = re.compile(
    r"""
    (?P<WS>[ \t\r\n]+)
  | (?P<IDENT>[A-Za-z][A-Za-z0-9_]*)
  | (?P<NAME>\#[A-Za-z0-9_]+)
  | (?P<VALUE>:[A-Za-z0-9_]+)
  | (?P<NUMBER>[0-9]+)
  | (?P<PUNCT><>|<=|>=|[()\[\],.=<>+\-])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    position: int  # index in the full token list, whitespace included

    def is_punct(self, text: str) -> bool:
        return self.kind == PUNCT and self.text == text

    def is_keyword(self, word: str) -> bool:
        """Keywords (AND, SET, BETWEEN...) match in any case."""
        return self.kind == IDENT and self.text.upper() == word


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens, whitespace included."""
    tokens: list[Token] = []
    index = 0
    length = len(text)
    while index < length:
        match = _TOKEN_RE.match(text, index)
        if match is None:
            tokens.append(Token(UNKNOWN, text[index], len(tokens)))
            index += 1
            continue
        kind = match.lastgroup
        assert kind is not None
        tokens.append(Token(kind, match.group(), len(tokens)))
        index = match.end()
    return tokens


def syntax_error_detail(tokens: list[Token], position: int) -> str:
    """DynamoDB's 'Syntax error; token: "x", near: "..."' text.

    ``position`` indexes the full token list; ``len(tokens)`` means the
    expression ended too early.  "near" is the token before the offending one
    (and the one before that when the previous is a blank), the offending
    token, and the one after it (and the one after that when it is a blank) —
    the shape DynamoDB's messages have, e.g. near: "SET _123" for "SET _123 = :v".
    """
    at_end = position >= len(tokens)
    shown = EOF_TEXT if at_end else tokens[position].text
    parts: list[str] = []
    previous = position - 1
    if previous >= 0:
        if tokens[previous].kind == WS and previous >= 1:
            parts.append(tokens[previous - 1].text)
        parts.append(tokens[previous].text)
    if not at_end:
        parts.append(tokens[position].text)
        following = position + 1
        if following < len(tokens):
            parts.append(tokens[following].text)
            if tokens[following].kind == WS and following + 1 < len(tokens):
                parts.append(tokens[following + 1].text)
    return f'Syntax error; token: "{shown}", near: "{"".join(parts)}"'
