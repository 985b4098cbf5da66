"""The registry of kinds: one entry per custom resource, in the order the CRDs are listed.

A new kind (GlobalTable is next) is a module defining its models and its
``ResourceKind``, plus one line here; CRD generation and the tests follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tablekeeper.resources.backup import BACKUP
from tablekeeper.resources.common import API_VERSION, Resource, ResourceKind
from tablekeeper.resources.pitr import PITR_CONFIG
from tablekeeper.resources.plan import BACKUP_PLAN
from tablekeeper.resources.restore import RESTORE
from tablekeeper.resources.table import TABLE
from tablekeeper.resources.vault import BACKUP_VAULT

KINDS: tuple[ResourceKind, ...] = (TABLE, PITR_CONFIG, BACKUP, BACKUP_VAULT, BACKUP_PLAN, RESTORE)

_BY_KIND: dict[str, ResourceKind] = {k.kind: k for k in KINDS}


def kind_named(kind: str) -> ResourceKind:
    """The registered kind called ``kind``; KeyError names the known ones when there is none."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise KeyError(f"unknown kind {kind!r}: tablekeeper.io has {', '.join(_BY_KIND)}") from None


def parse(obj: Mapping[str, Any]) -> Resource:
    """The model of a custom resource given as the API returns it (pydantic.ValidationError when invalid)."""
    if obj.get("apiVersion") != API_VERSION:
        raise ValueError(f"parse resource: apiVersion {obj.get('apiVersion')!r} is not {API_VERSION}")
    return kind_named(str(obj.get("kind"))).model.model_validate(obj)
