"""DynamoDB's expression language: one tokenizer, one parser, one AST.

All five expression kinds (Condition, Filter, KeyCondition, Update,
Projection) and the legacy parameters (Expected, QueryFilter/ScanFilter,
KeyConditions, AttributeUpdates, AttributesToGet) become the same AST.
Everything is validated when parsed, with DynamoDB's exact messages, so
execution cannot half-fail on a malformed request.

Typical use by an operation::

    ctx = ExpressionContext.from_wire(request.get("ExpressionAttributeNames"),
                                      request.get("ExpressionAttributeValues"))
    update = parse_update(request["UpdateExpression"], ctx)
    condition = parse_condition(request["ConditionExpression"], ctx)
    ctx.check_unused()
    ...
    if not evaluate(condition, old_item): raise ConditionalCheckFailedException()
    new_item = apply_update(update, old_item or key, exists=old_item is not None)

DynamoDB parses a request's expressions in this order, which decides which
error a request with several bad expressions gets: UpdateExpression,
ConditionExpression, KeyConditionExpression, FilterExpression,
ProjectionExpression, then the unused-placeholder check.
"""

from __future__ import annotations

from .ast import (
    Condition,
    KeyCondition,
    Path,
    Projection,
    UpdatePlan,
)
from .context import ExpressionContext, decode_attribute_values
from .evaluate import evaluate, resolve
from .keys import parse_key_condition
from .legacy import (
    attribute_updates_to_plan,
    attributes_to_get_to_projection,
    check_conditional_operator,
    check_expression_mix,
    expected_to_condition,
    filter_to_condition,
    key_conditions_to_key_condition,
)
from .parser import parse_condition, parse_projection, parse_update
from .projection import project
from .unparse import Rendered, to_text
from .update import apply_update

__all__ = [
    "Condition",
    "ExpressionContext",
    "KeyCondition",
    "Path",
    "Projection",
    "Rendered",
    "UpdatePlan",
    "apply_update",
    "attribute_updates_to_plan",
    "attributes_to_get_to_projection",
    "check_conditional_operator",
    "check_expression_mix",
    "decode_attribute_values",
    "evaluate",
    "expected_to_condition",
    "filter_to_condition",
    "key_conditions_to_key_condition",
    "parse_condition",
    "parse_key_condition",
    "parse_projection",
    "parse_update",
    "project",
    "resolve",
    "to_text",
]
