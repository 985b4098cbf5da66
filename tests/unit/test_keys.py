"""keys.encode_scalar: byte order is DynamoDB order, and encodings delimit themselves.

Stored keys are ``hash || enc(pk) || enc(sk)`` compared as plain bytes, so two
properties carry every Query range and every sort order: comparing encodings
compares the values as DynamoDB does (``values.compare``), and no encoding is
a prefix of another, so a concatenation sorts by its first value, then its
second.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tablekeeper.engine.engine import dump_item, parse_stored
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.keys import encode_scalar
from tablekeeper.engine.values import Value, check_number, compare

# Any Unicode scalar value (no lone surrogates: they are not UTF-8), NUL included.
strings = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
binaries = st.binary(min_size=1, max_size=12)


@st.composite
def numbers(draw: st.DrawFn) -> Decimal:
    """Numbers DynamoDB accepts: up to 38 significant digits, magnitude 1e-130 to <1e126."""
    digits = draw(st.integers(min_value=1, max_value=38))
    mantissa = draw(st.integers(min_value=0, max_value=10**digits - 1))
    exponent = draw(st.integers(min_value=-130 - 37, max_value=125))
    sign = draw(st.sampled_from((1, -1)))
    try:
        return check_number(Decimal(sign * mantissa).scaleb(exponent))
    except ValidationException:  # outside the range once normalized
        return Decimal(sign * mantissa % 10)


def edge_numbers() -> st.SearchStrategy[Decimal]:
    edges = [
        "0",
        "1E-130",
        "-1E-130",
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999E+125",
        "1",
        "-1",
        "10",
        "0.1",
        "-0.1",
    ]
    return st.sampled_from([check_number(Decimal(text)) for text in edges])


scalars_of_one_type = st.one_of(
    st.lists(strings, min_size=2, max_size=2),
    st.lists(st.one_of(numbers(), edge_numbers()), min_size=2, max_size=2),
    st.lists(binaries, min_size=2, max_size=2),
)


def sign(number: int) -> int:
    return (number > 0) - (number < 0)


def byte_order(left: bytes, right: bytes) -> int:
    return (left > right) - (left < right)


@given(scalars_of_one_type)
def test_encoding_orders_values_as_dynamodb_does(pair: list[Value]) -> None:
    left, right = pair
    assert byte_order(encode_scalar(left), encode_scalar(right)) == sign(compare(left, right))


@given(scalars_of_one_type)
def test_no_encoding_is_a_prefix_of_another(pair: list[Value]) -> None:
    left, right = pair
    if compare(left, right) != 0:
        assert not encode_scalar(right).startswith(encode_scalar(left))


@given(scalars_of_one_type, scalars_of_one_type)
def test_concatenated_encodings_order_by_first_value_then_second(
    firsts: list[Value], seconds: list[Value]
) -> None:
    left = encode_scalar(firsts[0]) + encode_scalar(seconds[0])
    right = encode_scalar(firsts[1]) + encode_scalar(seconds[1])
    expected = sign(compare(firsts[0], firsts[1])) or sign(compare(seconds[0], seconds[1]))
    assert byte_order(left, right) == expected


@given(st.one_of(numbers(), edge_numbers()))
def test_numbers_equal_in_value_encode_identically_once_normalized(number: Decimal) -> None:
    sign_bit, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    spelled_longer = Decimal((sign_bit, (*digits, 0), exponent - 1))  # 1.5 as 1.50
    assert encode_scalar(check_number(spelled_longer)) == encode_scalar(number)


def test_strings_sort_by_utf8_bytes_not_utf16_code_units() -> None:
    # U+FFFF is EF BF BF in UTF-8, U+1D11E is F0 9D 84 9E; UTF-16 orders them the other way.
    assert encode_scalar("\uffff") < encode_scalar("\U0001d11e")


def test_a_string_sorts_before_its_extension_with_nul() -> None:
    assert (
        encode_scalar("a")
        < encode_scalar("a\x00")
        < encode_scalar("a\x00\x00")
        < encode_scalar("a\x01")
    )


def test_a_number_read_back_from_storage_encodes_to_the_key_it_was_stored_under() -> None:
    stored = check_number(Decimal("100"))
    read_back = parse_stored(dump_item({"sk": stored}))["sk"]
    assert encode_scalar(read_back) == encode_scalar(stored)
