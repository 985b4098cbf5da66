"""Properties: any valid AST survives text and back; updates match a plain model."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tablekeeper.engine.expressions import (
    ExpressionContext,
    apply_update,
    parse_condition,
    parse_projection,
    parse_update,
    to_text,
)
from tablekeeper.engine.expressions.ast import (
    AddAction,
    And,
    Arithmetic,
    AttributeExists,
    AttributeNotExists,
    AttributeType,
    BeginsWith,
    Between,
    Compare,
    Contains,
    DeleteAction,
    IfNotExists,
    In,
    ListAppend,
    Literal,
    Node,
    Not,
    Or,
    Path,
    Projection,
    RemoveAction,
    SetAction,
    Size,
    UpdatePlan,
)

FAST = settings(max_examples=100, deadline=None)

# Reserved words and odd characters are fine: to_text always uses #placeholders.
names = st.sampled_from(["a", "b", "status", "x.y", "with space", "[3]", "ü"])
numbers = st.integers(-(10**6), 10**6).map(lambda n: Decimal(n).normalize() if n else Decimal(0))
strings = st.text(max_size=5)
binaries = st.binary(max_size=5)
scalars = st.one_of(strings, numbers, binaries)
sets = st.one_of(
    st.frozensets(strings, min_size=1, max_size=3),
    st.frozensets(numbers, min_size=1, max_size=3),
    st.frozensets(binaries, min_size=1, max_size=3),
)
values = st.recursive(
    st.one_of(scalars, st.booleans(), st.none(), sets),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(head: st.SearchStrategy[str] = names) -> st.SearchStrategy[Path]:
    tail = st.lists(st.one_of(names, st.integers(0, 12)), max_size=2)
    return st.builds(lambda h, t: Path((h, *t)), head, tail)


def _paths_differ(*nodes: Node) -> bool:
    """DynamoDB refuses f(p, p) and p = p on one path."""
    return not (isinstance(nodes[0], Path) and nodes[0] == nodes[1])


ordered_operands = st.one_of(paths(), scalars.map(Literal), paths().map(Size))
any_operands = st.one_of(paths(), values.map(Literal), paths().map(Size))


def _between(value: Node, bounds: tuple[Decimal, Decimal] | None, low: Node, high: Node) -> Between:
    if bounds is not None:
        low, high = Literal(min(bounds)), Literal(max(bounds))
    return Between(value, low, high)


leaf_conditions = st.one_of(
    st.builds(Compare, st.sampled_from(["=", "<>"]), any_operands, any_operands).filter(
        lambda c: _paths_differ(c.left, c.right)
    ),
    st.builds(
        Compare, st.sampled_from(["<", "<=", ">", ">="]), ordered_operands, ordered_operands
    ).filter(lambda c: _paths_differ(c.left, c.right)),
    st.builds(
        _between,
        ordered_operands,
        st.one_of(st.none(), st.tuples(numbers, numbers)),
        st.one_of(paths(), paths().map(Size)),
        st.one_of(paths(), paths().map(Size)),
    ),
    st.builds(In, any_operands, st.lists(any_operands, min_size=1, max_size=4).map(tuple)),
    st.builds(AttributeExists, paths()),
    st.builds(AttributeNotExists, paths()),
    st.builds(
        AttributeType,
        paths(),
        st.sampled_from(["S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"]).map(Literal),
    ),
    st.builds(
        BeginsWith, paths(), st.one_of(paths(), strings.map(Literal), binaries.map(Literal))
    ).filter(lambda c: _paths_differ(c.value, c.prefix)),
    st.builds(Contains, paths(), st.one_of(paths(), values.map(Literal))).filter(
        lambda c: _paths_differ(c.value, c.operand)
    ),
)
conditions = st.recursive(
    leaf_conditions,
    lambda inner: st.one_of(
        st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
    ),
    max_leaves=8,
)


def _reparse(node: Node, parse) -> Node:
    rendered = to_text(node)
    ctx = ExpressionContext(rendered.names or None, rendered.values or None)
    parsed = parse(rendered.text, ctx)
    ctx.check_unused()
    return parsed


@FAST
@given(conditions)
def test_any_condition_survives_text_and_back(condition):
    assert _reparse(condition, parse_condition) == condition


# --- updates ----------------------------------------------------------------------

set_operands = st.one_of(
    paths(),
    values.map(Literal),
    st.builds(IfNotExists, paths(), st.one_of(paths(), values.map(Literal))),
)
list_operands = st.one_of(
    paths(),
    st.lists(values, max_size=2).map(Literal),
    st.builds(IfNotExists, paths(), st.lists(values, max_size=2).map(Literal)),
)
number_operands = st.one_of(
    paths(), numbers.map(Literal), st.builds(IfNotExists, paths(), numbers.map(Literal))
)
set_values = st.one_of(
    set_operands,
    st.builds(ListAppend, list_operands, list_operands),
    st.builds(Arithmetic, st.sampled_from(["+", "-"]), number_operands, number_operands),
)


@st.composite
def update_plans(draw) -> UpdatePlan:
    # Distinct heads keep paths from overlapping; clauses stay grouped, as written.
    heads = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    kinds = draw(st.permutations(["SET", "REMOVE", "ADD", "DELETE"]))
    by_kind: dict[str, list] = {kind: [] for kind in kinds}
    for head in heads:
        path = draw(paths(st.just(head)))
        kind = draw(st.sampled_from(kinds))
        if kind == "SET":
            by_kind[kind].append(SetAction(path, draw(set_values)))
        elif kind == "REMOVE":
            by_kind[kind].append(RemoveAction(path))
        elif kind == "ADD":
            by_kind[kind].append(AddAction(path, Literal(draw(st.one_of(numbers, sets)))))
        else:
            by_kind[kind].append(DeleteAction(path, Literal(draw(sets))))
    return UpdatePlan(tuple(action for kind in kinds for action in by_kind[kind]))


@FAST
@given(update_plans())
def test_any_update_survives_text_and_back(plan):
    assert _reparse(plan, parse_update) == plan


@FAST
@given(
    st.lists(names, min_size=1, max_size=5, unique=True).flatmap(
        lambda heads: st.tuples(*(paths(st.just(head)) for head in heads))
    )
)
def test_any_projection_survives_text_and_back(projection_paths):
    projection = Projection(tuple(projection_paths))
    assert _reparse(projection, parse_projection) == projection


# --- updates against a plain model ---------------------------------------------------

top_names = st.sampled_from(["a", "b", "c", "d", "e"])
number_sets = st.frozensets(numbers, min_size=1, max_size=3)


@FAST
@given(
    st.dictionaries(top_names, st.one_of(numbers, number_sets, strings), max_size=5),
    st.lists(
        st.tuples(
            top_names,
            st.sampled_from(["SET", "REMOVE", "ADD", "DELETE"]),
            st.one_of(numbers, number_sets),
        ),
        max_size=5,
        unique_by=lambda t: t[0],
    ),
)
def test_top_level_updates_match_a_dictionary_model(item, operations):
    actions, expected = [], dict(item)
    for name, kind, value in operations:
        current = item.get(name)
        if kind == "SET":
            actions.append(SetAction(Path((name,)), Literal(value)))
            expected[name] = value
        elif kind == "REMOVE":
            actions.append(RemoveAction(Path((name,))))
            expected.pop(name, None)
        elif kind == "ADD" and (current is None or type(current) is type(value)):
            actions.append(AddAction(Path((name,)), Literal(value)))
            expected[name] = (
                value
                if current is None
                else (current + value if isinstance(value, Decimal) else current | value)
            )
        elif (
            kind == "DELETE"
            and isinstance(value, frozenset)
            and isinstance(current, frozenset | None)
        ):
            actions.append(DeleteAction(Path((name,)), Literal(value)))
            if current is not None:
                remaining = current - value
                if remaining:
                    expected[name] = remaining
                else:
                    del expected[name]
    assert apply_update(UpdatePlan(tuple(actions)), item) == expected


@FAST
@given(
    st.lists(st.integers(0, 99), max_size=8),
    st.sets(st.integers(0, 12), max_size=5),
    st.dictionaries(st.integers(0, 12), st.integers(100, 199), max_size=5),
)
def test_list_positions_refer_to_the_original_list(original, removed, assigned):
    removed = removed - assigned.keys()
    actions = [SetAction(Path(("l", i)), Literal(Decimal(v))) for i, v in assigned.items()]
    actions += [RemoveAction(Path(("l", i))) for i in removed]
    item = {"l": [Decimal(v) for v in original]}
    kept = [Decimal(assigned.get(i, v)) for i, v in enumerate(original) if i not in removed]
    appended = [Decimal(assigned[i]) for i in sorted(assigned) if i >= len(original)]
    assert apply_update(UpdatePlan(tuple(actions)), item) == {"l": kept + appended}
