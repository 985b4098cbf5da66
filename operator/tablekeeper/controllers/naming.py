"""Deterministic names and labels for the objects the operator creates: a BackupPlan's Backups,
a Restore's Table.

A child's name is computed from what it is (plan, rule, table, scheduled
instant), never from the clock or a random suffix, so creating it again after a
crash hits AlreadyExists, which counts as success.

Names are DNS-1123 *labels* (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, at most 63
characters): valid as any object's name and also usable as a label value. A
part that had to be shortened or rewritten gets a short hash of the original
text, so two different inputs do not end up with the same name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

MAX_NAME = 63  # a DNS-1123 label, and the limit for label values
HASH_LENGTH = 8
TIMESTAMP_FORMAT = "%Y%m%d%H%M"  # UTC, minute resolution: cron's resolution

PLAN_LABEL = "tablekeeper.io/plan"
RULE_LABEL = "tablekeeper.io/rule"
TABLE_LABEL = "tablekeeper.io/table"
# On a Table a Restore created: the Restore's name (annotation: exact; label: for selection).
RESTORE_ANNOTATION = "tablekeeper.io/restore"
RESTORE_LABEL = "tablekeeper.io/restore"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "tablekeeper"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def child_name(plan: str, rule: str, scheduled: datetime, table: str | None = None) -> str:
    """``<plan>-<rule>[-<table>]-<YYYYMMDDHHMM>`` for the run scheduled at ``scheduled`` (UTC)."""
    if scheduled.tzinfo is None:
        raise ValueError(f"name backup: scheduled time must be timezone-aware, got {scheduled.isoformat()}")
    return _compose(
        [plan, rule, *([table] if table else [])], scheduled.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    )


def run_now_child_name(plan: str, rule: str, token: str, table: str | None = None) -> str:
    """``<plan>-<rule>[-<table>]-now-<hash of token>`` for an on-demand run.

    Named after the run-now token rather than the time it was seen, so a retry
    after a crash (before the token was recorded as handled) finds the same child.
    """
    return _compose([plan, rule, *([table] if table else [])], f"now-{_digest(token)}")


def child_labels(plan: str, rule: str, table: str | None = None) -> dict[str, str]:
    """The labels of a child Backup: which plan and rule made it; never the plan's own labels."""
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        PLAN_LABEL: label_value(plan),
        RULE_LABEL: label_value(rule),
    }
    if table:
        labels[TABLE_LABEL] = label_value(table)
    return labels


def label_value(text: str) -> str:
    """``text`` as a valid label value: kept when valid, else cleaned, shortened and hashed."""
    if _LABEL_VALUE.match(text) and len(text) <= MAX_NAME:
        return text
    cleaned = re.sub(r"[^-A-Za-z0-9_.]+", "-", text).strip("-_.")
    room = MAX_NAME - HASH_LENGTH - 1
    head = cleaned[:room].rstrip("-_.")
    return f"{head}-{_digest(text)}" if head else _digest(text)


def object_name(text: str) -> str:
    """``text`` (e.g. a DynamoDB table name) as an object name: kept when it is a DNS-1123 label,
    else lowercased, cleaned, shortened and hashed ("Orders" and "orders" stay apart)."""
    if is_dns_label(text):
        return text
    head = _dns_part(text)[: MAX_NAME - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{_digest(text)}" if head else _digest(text)


def is_dns_label(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_DNS_LABEL.match(name))


def _compose(parts: list[str], suffix: str) -> str:
    """Join ``parts`` and ``suffix`` with '-', hashing the parts when they must be changed to fit."""
    cleaned = [_dns_part(part) for part in parts]
    prefix = "-".join(part for part in cleaned if part)
    exact = all(clean == part for clean, part in zip(cleaned, parts, strict=True))
    name = f"{prefix}-{suffix}" if prefix else suffix
    if exact and len(name) <= MAX_NAME:
        return name
    # The hash covers the original parts, so names differing only in what was cut stay apart.
    digest = _digest("\x00".join(parts))
    room = MAX_NAME - len(suffix) - HASH_LENGTH - 2
    head = prefix[:room].rstrip("-")
    return f"{head}-{digest}-{suffix}" if head else f"{digest}-{suffix}"


def _dns_part(text: str) -> str:
    """Lowercase; runs of anything but [a-z0-9] become one '-'; no '-' at either end."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]
