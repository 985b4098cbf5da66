"""Transactions: TransactWriteItems and TransactGetItems.

TransactWriteItems runs as ONE storage write (``tables`` = the number of
distinct tables, so it commits all-or-nothing across table files): it reads
every target item, checks every condition, computes every new image, and
only when nothing failed writes them all through ``common.write_item``.
The storage writer runs writes one after another, so the transaction is
isolated from every other write; a failure cancels it with one
CancellationReason per action, in request order.

Errors split the way DynamoDB splits them.  What the request alone shows is
a ValidationException before anything runs: member constraints, values,
expressions, an empty key value, a Put over 400 KB, two actions on one
item.  What depends on the stored items, and a key of the wrong type
(DynamoDB checks key types against the schema inside the transaction), is a
cancellation reason: ConditionalCheckFailed or ValidationError.

ClientRequestToken makes a TransactWriteItems idempotent for ten minutes
after it completes (:class:`TokenStore`, timed by the engine's clock): the
same token with the same request returns success without writing again; with
a different request it is IdempotentParameterMismatchException.  A completed
token is also written in the transaction's own storage write, so the promise
holds across an engine restart; maintenance deletes recorded tokens after
their ten minutes.

TransactGetItems reads every item from one consistent point.  Reads on the
event-loop thread are not enough (the storage writer commits from its own
thread between two of them), so it reads from storage snapshots; for
several tables the snapshots are opened inside a write function, where the
writer commits nothing, so every table shows the same point.  Tokens and
snapshots aside, nothing here keeps state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tablekeeper.engine import expressions as ex
from tablekeeper.engine.capacity import Consumed, read_units, write_units
from tablekeeper.engine.engine import Engine, parse_stored
from tablekeeper.engine.errors import (
    IdempotentParameterMismatchException,
    TransactionCanceledException,
    TransactionInProgressException,
    ValidationException,
)
from tablekeeper.engine.operations.base import Operation
from tablekeeper.engine.operations.batch import consumed_list, is_key_shape_error, java_echo
from tablekeeper.engine.operations.common import (
    RETURN_CONSUMED,
    RETURN_METRICS,
    RETURN_ON_FAILURE,
    Existing,
    check_item_size,
    expression_context,
    projection_context,
    read_existing,
    table_for_items,
    write_item,
)
from tablekeeper.engine.shapes import Members
from tablekeeper.engine.storage.base import Reader, WriteTxn
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.values import Item, decode_item, encode_item, item_size

MAX_TRANSACT_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
TOKEN_TTL_SECONDS = 600.0

ONE_ITEM = "Transaction request cannot include multiple operations on one item"
TOO_LARGE = "Transaction request cannot be larger than 4 MB"
CHECK_FAILED = "The conditional request failed"
_UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"
_NO_REASON: dict[str, Any] = {"Code": "None"}
_WRITE_KINDS = ("ConditionCheck", "Put", "Delete", "Update")
# What a retry with the same token must repeat: the actions, member by member. The members that
# only shape the response may change, and members DynamoDB does not know are ignored, as its
# parser ignores them.
_ACTION_MEMBERS: dict[str, tuple[str, ...]] = {
    kind: ("TableName", "Item" if kind == "Put" else "Key", "UpdateExpression", "ConditionExpression",
           "ExpressionAttributeNames", "ExpressionAttributeValues", "ReturnValuesOnConditionCheckFailure")
    for kind in _WRITE_KINDS
}  # fmt: skip


def _validation_reason(message: str | None) -> dict[str, Any]:
    return {"Code": "ValidationError", "Message": message or ""}


def _check_count(m: Members, items: list[Any], type_name: str) -> None:
    """TransactItems' length, echoed the way DynamoDB's validator prints it."""
    if not items:
        m.fail("TransactItems", "[]", "Member must have length greater than or equal to 1")
    elif len(items) > MAX_TRANSACT_ITEMS:
        m.fail(
            "TransactItems", java_echo(type_name, items),
            f"Member must have length less than or equal to {MAX_TRANSACT_ITEMS}",
        )


# --- idempotency tokens ----------------------------------------------------------------


@dataclass
class _Token:
    fingerprint: bytes
    completed_at: float | None = None  # None while the transaction runs


@dataclass
class TokenStore:
    """ClientRequestTokens seen in the last ten minutes (pure: time is an argument).

    A token is claimed when its transaction starts, completed when it
    succeeds (the ten minutes count from then) and released when it fails,
    so a cancelled transaction may be retried with the same token.
    """

    ttl: float = TOKEN_TTL_SECONDS
    _tokens: OrderedDict[str, _Token] = field(default_factory=OrderedDict)

    def claim(self, token: str, fingerprint: bytes, now: float) -> bool:
        """True: run the transaction.  False: it already ran; answer success again."""
        self._expire(now)
        entry = self._tokens.get(token)
        if entry is None:
            self._tokens[token] = _Token(fingerprint)
            return True
        if entry.fingerprint != fingerprint:
            raise IdempotentParameterMismatchException(
                "The request uses the same client token as a previous, but different, request."
            )
        if entry.completed_at is None:
            raise TransactionInProgressException("Transaction from previous request is still in progress")
        return False

    def remember(self, token: str, fingerprint: bytes, completed_at: float, now: float) -> None:
        """Learn a token completed before this process started (read back from storage)."""
        if now - completed_at < self.ttl and token not in self._tokens:
            self._tokens[token] = _Token(fingerprint, completed_at)

    def complete(self, token: str, now: float) -> None:
        entry = self._tokens.get(token)
        if entry is not None:
            entry.completed_at = now
            self._tokens.move_to_end(token)

    def release(self, token: str) -> None:
        self._tokens.pop(token, None)

    def _expire(self, now: float) -> None:
        while self._tokens:
            entry = next(iter(self._tokens.values()))
            if entry.completed_at is None or now - entry.completed_at < self.ttl:
                return
            self._tokens.popitem(last=False)

    def __len__(self) -> int:
        return len(self._tokens)


_TOKEN_STORES: weakref.WeakKeyDictionary[Engine, TokenStore] = weakref.WeakKeyDictionary()


def token_store(engine: Engine) -> TokenStore:
    """The engine's tokens in memory; completed ones are also recorded in storage."""
    store = _TOKEN_STORES.get(engine)
    if store is None:
        store = _TOKEN_STORES[engine] = TokenStore()
    return store


# Completed tokens are also written, in the transaction's own storage write, to
# a space of the transaction's first table (by id): a retry after the engine
# crashed between committing and answering must not apply the transaction
# twice.  Entry: token -> fingerprint (32 bytes) + completion time (ms, 8 bytes).
TOKEN_SPACE = "txtokens"


def token_home(targets: Iterable[_Target]) -> TableDefinition:
    """The table whose token space records a transaction's token."""
    return min((t.table for t in targets), key=lambda table: table.table_id)


def _token_entry(fingerprint: bytes, completed_ms: int) -> bytes:
    return fingerprint + completed_ms.to_bytes(8, "big")


def stored_token(reader: Reader, token: str) -> tuple[bytes, float] | None:
    """(fingerprint, completion time in seconds) of a token recorded in storage."""
    entry = reader.get(token.encode(), space=TOKEN_SPACE)
    if entry is None or len(entry) != 40:
        return None
    return entry[:32], int.from_bytes(entry[32:], "big") / 1000


def expired_tokens(reader: Reader, now: float, limit: int) -> list[bytes]:
    """Keys of recorded tokens past the ten minutes (for maintenance to delete)."""
    cutoff_ms = int((now - TOKEN_TTL_SECONDS) * 1000)
    expired = []
    for key, entry in reader.range(None, None, space=TOKEN_SPACE):
        if int.from_bytes(entry[32:40], "big") < cutoff_ms:
            expired.append(key)
            if len(expired) >= limit:
                break
    return expired


def request_fingerprint(shapes: Iterable[tuple[str, dict[str, Any]]]) -> bytes:
    """What must match for a retry with the same token to be "the same request": its actions
    (``_write_action_shape``'s kinds and members), each member its kind has."""
    actions = [{kind: {name: value for name, value in wire.items() if name in _ACTION_MEMBERS[kind]}}
               for kind, wire in shapes]  # fmt: skip
    return hashlib.sha256(orjson.dumps(actions, option=orjson.OPT_SORT_KEYS)).digest()


# --- TransactWriteItems: parse ---------------------------------------------------------


@dataclass(frozen=True)
class WriteAction:
    kind: str  # ConditionCheck | Put | Delete | Update
    table_name: str
    item: Item | None  # Put
    key: Item | None  # the others
    condition: ex.Condition | None
    update: ex.UpdatePlan | None
    return_on_failure: str


@dataclass(frozen=True)
class TransactWriteItemsRequest:
    actions: tuple[WriteAction, ...]
    token: str | None
    fingerprint: bytes
    return_consumed: str | None
    return_metrics: str | None


def _write_action_shape(m: Members, index: int, wire: Any) -> tuple[str, dict[str, Any]]:
    """One TransactWriteItem's members; constraint errors join the request's list."""
    where = f"transactItems.{index + 1}.member."
    entry = Members(wire, where)
    present = [kind for kind in _WRITE_KINDS if entry.body.get(kind) is not None]
    if len(present) > 1:
        raise ValidationException("TransactItems can only contain one of Check, Put, Update or Delete")
    if not present:
        raise ValidationException(
            "Invalid Request: TransactWriteRequest should contain Delete or Put or Update request"
        )
    kind = present[0]
    op = Members(entry.mapping(kind), f"{where}{kind[0].lower()}{kind[1:]}.")
    op.errors = m.errors
    op.table_name()
    op.mapping("Item" if kind == "Put" else "Key", required=True)
    op.string("ConditionExpression", required=kind == "ConditionCheck")
    if kind == "Update":
        op.string("UpdateExpression", required=True)
    op.mapping("ExpressionAttributeNames")
    op.mapping("ExpressionAttributeValues")
    op.string("ReturnValuesOnConditionCheckFailure", enum=RETURN_ON_FAILURE)
    return kind, op.body


def _write_action(kind: str, wire: dict[str, Any]) -> WriteAction:
    """Decode one action's values and parse its expressions (request order)."""
    item = key = None
    if kind == "Put":
        item = decode_item(wire["Item"])
        check_item_size(item)
    else:
        key = decode_item(wire["Key"])
    expressions = ["UpdateExpression", "ConditionExpression"] if kind == "Update" else ["ConditionExpression"]
    ex.check_expression_mix(wire, expressions, [])
    ctx = expression_context(Members(wire))
    update = ex.parse_update(wire["UpdateExpression"], ctx) if kind == "Update" else None
    text = wire.get("ConditionExpression")
    condition = ex.parse_condition(text, ctx, "ConditionExpression") if text is not None else None
    ctx.check_unused()
    on_failure = wire.get("ReturnValuesOnConditionCheckFailure") or "NONE"
    return WriteAction(kind, wire["TableName"], item, key, condition, update, on_failure)


def _request_bytes(actions: Iterable[WriteAction]) -> int:
    """The items a request carries: every Put's item and every other action's key."""
    return sum(item_size(a.item if a.item is not None else a.key or {}) for a in actions)


def parse_transact_write_items(body: dict[str, Any]) -> TransactWriteItemsRequest:
    m = Members(body)
    items = m.array("TransactItems", required=True)
    if items is not None:
        _check_count(m, items, "TransactWriteItem")
    token = m.string("ClientRequestToken", min_len=1, max_len=36)
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    metrics = m.string("ReturnItemCollectionMetrics", enum=RETURN_METRICS)
    m.done()
    assert items is not None
    shapes = [_write_action_shape(m, index, wire) for index, wire in enumerate(items)]
    m.done()
    actions = tuple(_write_action(kind, wire) for kind, wire in shapes)
    if _request_bytes(actions) > MAX_TRANSACTION_BYTES:
        raise ValidationException(TOO_LARGE)
    fingerprint = request_fingerprint(shapes) if token is not None else b""
    return TransactWriteItemsRequest(actions, token, fingerprint, consumed, metrics)


# --- TransactWriteItems: execute -------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """An action bound to its table and stored key; ``reason`` when its key is refused."""

    action: WriteAction
    table: TableDefinition
    key: bytes
    key_item: Item
    reason: dict[str, Any] | None


@dataclass(frozen=True)
class _Outcome:
    """What one action did: the sizes that price it."""

    table: TableDefinition
    old_size: int
    new_size: int


def _bind_key(table: TableDefinition, action: WriteAction) -> tuple[bytes, Item, dict[str, Any] | None]:
    schema = table.key_schema
    source = action.item if action.item is not None else action.key
    assert source is not None
    try:
        if action.item is not None:
            schema.validate_item_keys(action.item)
        else:
            schema.validate_key(source)
    except ValidationException as error:
        if not is_key_shape_error(error):
            raise  # an empty or oversized key value: refused before the transaction
        return b"", {}, _validation_reason(error.message)
    return schema.encode(source), schema.key_of(source), None


def _bind(engine: Engine, actions: Iterable[WriteAction]) -> list[_Target]:
    targets: list[_Target] = []
    seen: set[tuple[str, bytes]] = set()
    for action in actions:
        table = table_for_items(engine, action.table_name)
        if action.update is not None:
            for name in sorted(action.update.top_level_names() & set(table.key_schema.names)):
                raise ValidationException(
                    "One or more parameter values were invalid: Cannot update attribute "
                    f"{name}. This attribute is part of the key"
                )
        key, key_item, reason = _bind_key(table, action)
        if reason is None:
            if (table.table_id, key) in seen:
                raise ValidationException(ONE_ITEM)
            seen.add((table.table_id, key))
        targets.append(_Target(action, table, key, key_item, reason))
    return targets


def _new_image(target: _Target, old: Existing) -> tuple[dict[str, Any] | None, Item | None]:
    """(cancellation reason or None, the item after the action)."""
    action = target.action
    if target.reason is not None:
        return target.reason, None
    try:
        if action.condition is not None and not ex.evaluate(action.condition, old.item):
            reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": CHECK_FAILED}
            if action.return_on_failure == "ALL_OLD" and old.item is not None:
                reason["Item"] = encode_item(old.item)
            return reason, None
        if action.kind == "Put":
            return None, action.item
        if action.kind == "Update":
            assert action.update is not None
            base = old.item if old.item is not None else dict(target.key_item)
            new = ex.apply_update(action.update, base, exists=old.item is not None)
            check_item_size(new, _UPDATE_TOO_LARGE)
            return None, new
    except ValidationException as error:
        return _validation_reason(error.message), None
    return None, old.item  # Delete writes None below; ConditionCheck writes nothing


def _transaction(
    engine: Engine, targets: list[_Target], token: tuple[str, bytes] | None = None
) -> Callable[[WriteTxn], list[_Outcome]]:
    """The write function: check everything, then write everything (and the token)."""

    def run(txn: WriteTxn) -> list[_Outcome]:
        olds = [
            read_existing(txn, t.table, t.key) if t.reason is None else Existing(None, None)
            for t in targets
        ]
        evaluated = [_new_image(t, old) for t, old in zip(targets, olds, strict=True)]
        if any(reason is not None for reason, _ in evaluated):
            raise TransactionCanceledException([reason or _NO_REASON for reason, _ in evaluated])
        outcomes: list[_Outcome] = []
        total = 0
        for t, old, (_, new) in zip(targets, olds, evaluated, strict=True):
            if t.action.kind == "Delete":
                new = None
            new_size = item_size(new) if new is not None else 0
            total += max(new_size, old.size)
            outcomes.append(_Outcome(t.table, old.size, new_size))
            if t.action.kind != "ConditionCheck":
                write_item(engine, txn, t.table, t.key, t.key_item, old, new, new_size)
        if total > MAX_TRANSACTION_BYTES:
            raise ValidationException(TOO_LARGE)  # undoes every write above
        if token is not None:
            name, fingerprint = token
            txn.put(token_home(targets).table_id, TOKEN_SPACE, name.encode(),
                    _token_entry(fingerprint, engine.now_ms()))
        return outcomes

    return run


@dataclass(frozen=True)
class TransactResult:
    consumed: list[dict[str, Any]] | None
    responses: list[dict[str, Any]] | None = None  # TransactGetItems only

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {}
        if self.responses is not None:
            wire["Responses"] = self.responses
        if self.consumed is not None:
            wire["ConsumedCapacity"] = self.consumed
        return wire


def _write_capacity(outcomes: list[_Outcome], mode: str | None) -> list[dict[str, Any]] | None:
    """Transactions cost twice: a prepare and a commit per item."""
    consumed: dict[str, Consumed] = {}
    for o in outcomes:
        consumed.setdefault(o.table.name, Consumed(o.table.name)).write += 2 * write_units(
            o.old_size, o.new_size
        )
    return consumed_list(consumed, mode, split=True)


def _replayed(engine: Engine, targets: list[_Target], mode: str | None) -> TransactResult:
    """A repeated request: nothing is written; DynamoDB charges reading the items."""
    consumed: dict[str, Consumed] = {}
    for t in targets:
        blob = engine.reader(t.table).get(t.key) if t.reason is None else None
        size = item_size(parse_stored(blob)) if blob is not None else 0
        consumed.setdefault(t.table.name, Consumed(t.table.name)).read += 2 * read_units(size, True)
    return TransactResult(consumed_list(consumed, mode, split=True))


async def transact_write_items(engine: Engine, request: TransactWriteItemsRequest) -> TransactResult:
    targets = _bind(engine, request.actions)
    tokens = token_store(engine)
    token = request.token
    if token is not None:
        recorded = stored_token(engine.reader(token_home(targets)), token)
        if recorded is not None:
            tokens.remember(token, recorded[0], recorded[1], engine.clock())
        if not tokens.claim(token, request.fingerprint, engine.clock()):
            return _replayed(engine, targets, request.return_consumed)
    tables = len({t.table.table_id for t in targets})
    record = None if token is None else (token, request.fingerprint)
    try:
        write = asyncio.ensure_future(
            engine.storage.write(_transaction(engine, targets, record), tables=tables)
        )
    except BaseException:
        if token is not None:
            tokens.release(token)
        raise
    if token is not None:
        write.add_done_callback(lambda done: _settle(tokens, token, done, engine.clock()))
    # Shielded: a client that goes away does not stop a transaction the
    # storage writer may already have committed, and the token learns the outcome.
    outcomes = await asyncio.shield(write)
    return TransactResult(_write_capacity(outcomes, request.return_consumed))


def _settle(tokens: TokenStore, token: str, done: asyncio.Future[Any], now: float) -> None:
    if not done.cancelled() and done.exception() is None:
        tokens.complete(token, now)
    else:
        tokens.release(token)


# --- TransactGetItems ----------------------------------------------------------------


@dataclass(frozen=True)
class GetAction:
    table_name: str
    key: Item
    projection: ex.Projection | None


@dataclass(frozen=True)
class TransactGetItemsRequest:
    actions: tuple[GetAction, ...]
    return_consumed: str | None


def _get_action_shape(m: Members, index: int, wire: Any) -> dict[str, Any]:
    where = f"transactItems.{index + 1}.member."
    entry = Members(wire, where)
    entry.errors = m.errors
    get = entry.mapping("Get", required=True)
    g = Members(get if get is not None else {}, f"{where}get.")
    g.errors = m.errors
    if get is not None:
        g.table_name()
        g.mapping("Key", required=True)
        g.string("ProjectionExpression")
        g.mapping("ExpressionAttributeNames")
    return g.body


def _get_action(wire: dict[str, Any]) -> GetAction:
    key = decode_item(wire["Key"])
    ex.check_expression_mix(wire, ["ProjectionExpression"], [])
    ctx = projection_context(Members(wire))
    text = wire.get("ProjectionExpression")
    projection = ex.parse_projection(text, ctx) if text is not None else None
    ctx.check_unused()
    return GetAction(wire["TableName"], key, projection)


def parse_transact_get_items(body: dict[str, Any]) -> TransactGetItemsRequest:
    m = Members(body)
    items = m.array("TransactItems", required=True)
    if items is not None:
        _check_count(m, items, "TransactGetItem")
    consumed = m.string("ReturnConsumedCapacity", enum=RETURN_CONSUMED)
    m.done()
    assert items is not None
    shapes = [_get_action_shape(m, index, wire) for index, wire in enumerate(items)]
    m.done()
    return TransactGetItemsRequest(tuple(_get_action(wire) for wire in shapes), consumed)


def _bind_gets(engine: Engine, actions: Iterable[GetAction]) -> list[tuple[TableDefinition, bytes]]:
    bound: list[tuple[TableDefinition, bytes]] = []
    reasons: list[dict[str, Any]] = []
    seen: set[tuple[str, bytes]] = set()
    for action in actions:
        table = table_for_items(engine, action.table_name)
        try:
            table.key_schema.validate_key(action.key)
        except ValidationException as error:
            if not is_key_shape_error(error):
                raise
            reasons.append(_validation_reason(error.message))
            bound.append((table, b""))
            continue
        key = table.key_schema.encode(action.key)
        if (table.table_id, key) in seen:
            raise ValidationException(ONE_ITEM)
        seen.add((table.table_id, key))
        reasons.append(_NO_REASON)
        bound.append((table, key))
    if any(reason is not _NO_REASON for reason in reasons):
        raise TransactionCanceledException(reasons)
    return bound


async def _read_consistently(
    engine: Engine, bound: list[tuple[TableDefinition, bytes]]
) -> list[bytes | None]:
    """Every item as of one point in time, across all the tables read."""
    tables = {table.table_id: table for table, _ in bound}
    if len(bound) == 1:
        table, key = bound[0]
        return [engine.reader(table).get(key)]
    with contextlib.ExitStack() as stack:
        if len(tables) == 1:
            (table,) = tables.values()
            readers = {table.table_id: stack.enter_context(engine.reader(table).snapshot())}
        else:
            # The storage writer commits nothing while a write function runs,
            # so snapshots opened inside one see every table at the same point.
            pinned, readers = await engine.storage.write(_pin_snapshots(engine, tables.values()))
            stack.enter_context(pinned)
        return [readers[table.table_id].get(key) for table, key in bound]


def _pin_snapshots(
    engine: Engine, tables: Iterable[TableDefinition]
) -> Callable[[WriteTxn], tuple[contextlib.ExitStack, dict[str, Reader]]]:
    """A write function that writes nothing: it opens a snapshot of every table."""

    def pin(_txn: WriteTxn) -> tuple[contextlib.ExitStack, dict[str, Reader]]:
        stack = contextlib.ExitStack()
        try:
            readers = {t.table_id: stack.enter_context(engine.reader(t).snapshot()) for t in tables}
        except BaseException:
            stack.close()
            raise
        return stack, readers

    return pin


async def transact_get_items(engine: Engine, request: TransactGetItemsRequest) -> TransactResult:
    bound = _bind_gets(engine, request.actions)
    blobs = await _read_consistently(engine, bound)
    responses: list[dict[str, Any]] = []
    consumed: dict[str, Consumed] = {}
    for action, (table, _), blob in zip(request.actions, bound, blobs, strict=True):
        item = parse_stored(blob) if blob is not None else None
        size = item_size(item) if item is not None else 0
        consumed.setdefault(table.name, Consumed(table.name)).read += 2 * read_units(size, True)
        if item is None:
            responses.append({})
        elif action.projection is None:
            responses.append({"Item": orjson.Fragment(blob)})
        else:
            responses.append({"Item": encode_item(ex.project(action.projection, item))})
    return TransactResult(consumed_list(consumed, request.return_consumed, split=True), responses)


OPERATIONS = {
    op.name: op
    for op in (
        Operation("TransactWriteItems", parse_transact_write_items, transact_write_items),
        Operation("TransactGetItems", parse_transact_get_items, transact_get_items),
    )
}
