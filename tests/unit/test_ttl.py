"""Time to live, the pure parts: which items expire, their entries, UpdateTimeToLive's rules."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tablekeeper.cli import build_parser
from tablekeeper.engine.errors import ValidationException
from tablekeeper.engine.keys import KeyAttribute, KeySchema
from tablekeeper.engine.operations.ttl import (
    ALREADY_DISABLED,
    ALREADY_ENABLED,
    TOO_SOON,
    describe_ttl,
    parse_update_time_to_live,
    plan_ttl_update,
)
from tablekeeper.engine.tables import TableDefinition
from tablekeeper.engine.ttl import (
    MAX_PAST_SECONDS,
    TTL_SPACE,
    entry_key,
    entry_prefix,
    is_expired,
    split_entry,
    sweep_bounds,
    ttl_changes,
)
from tablekeeper.engine.ttl_worker import DEFAULT_TTL_INTERVAL
from tablekeeper.engine.values import Item

NOW = 1_700_000_000.0
KEY = b"\x01\x02stored-key"


def table(status: str = "ENABLED", attribute: str | None = "exp", changed: float | None = None
          ) -> TableDefinition:
    return TableDefinition(
        name="t", table_id="0" * 32, key_schema=KeySchema(KeyAttribute("pk", "S")),
        attribute_definitions=(("pk", "S"),), created=0.0, ttl_attribute=attribute,
        ttl_enabled=status in ("ENABLING", "ENABLED"), ttl_status=status, ttl_changed=changed,
    )


def item(exp: object) -> Item:
    return {"pk": "a", "exp": exp}  # type: ignore[dict-item]


# --- which items have an expiry ---------------------------------------------------------------


def test_an_item_with_a_number_ttl_gets_an_entry_of_its_expiry_then_its_key() -> None:
    entry = entry_key(table(), KEY, item(Decimal(1234)))
    assert entry == (1234).to_bytes(8, "big") + KEY
    assert split_entry(entry) == (1234, KEY)


@pytest.mark.parametrize("value", ["1234", b"1234", True, None, frozenset({Decimal(1)}),
                                   [Decimal(1)], {"n": Decimal(1)}])
def test_a_ttl_attribute_that_is_not_a_number_gives_no_entry(value: object) -> None:
    assert entry_key(table(), KEY, item(value)) is None


def test_an_item_without_the_ttl_attribute_gives_no_entry() -> None:
    assert entry_key(table(), KEY, {"pk": "a", "other": Decimal(5)}) is None


def test_a_fractional_ttl_is_entered_at_its_whole_second() -> None:
    assert split_entry(entry_key(table(), KEY, item(Decimal("99.9"))) or b"")[0] == 99


@pytest.mark.parametrize("value", [Decimal(-1), Decimal("1e30")])
def test_a_ttl_before_1970_or_beyond_eight_bytes_of_seconds_gives_no_entry(value: Decimal) -> None:
    assert entry_key(table(), KEY, item(value)) is None


@pytest.mark.parametrize("status", ["DISABLED", "DISABLING"])
def test_no_entries_are_kept_unless_ttl_is_enabling_or_enabled(status: str) -> None:
    assert entry_key(table(status), KEY, item(Decimal(5))) is None
    assert entry_key(table("ENABLING"), KEY, item(Decimal(5))) is not None


def test_entries_sort_by_expiry_before_key() -> None:
    early = entry_key(table(), b"\xff\xff", item(Decimal(10)))
    late = entry_key(table(), b"\x00", item(Decimal(11)))
    assert early is not None and late is not None and early < late


# --- entry changes on a write -------------------------------------------------------------------


def test_changing_the_expiry_moves_the_entry() -> None:
    changes = list(ttl_changes(table(), KEY, item(Decimal(10)), item(Decimal(20))))
    assert changes == [
        (TTL_SPACE, entry_prefix(10) + KEY, None, 0),
        (TTL_SPACE, entry_prefix(20) + KEY, b"", 0),
    ]


def test_a_write_that_keeps_the_expiry_changes_no_entry() -> None:
    old = item(Decimal(10))
    new = {**old, "other": "x"}
    assert list(ttl_changes(table(), KEY, old, new)) == []


def test_deleting_an_item_deletes_its_entry() -> None:
    assert list(ttl_changes(table(), KEY, item(Decimal(10)), None)) == [
        (TTL_SPACE, entry_prefix(10) + KEY, None, 0)
    ]


def test_turning_the_ttl_into_a_string_deletes_the_entry() -> None:
    assert list(ttl_changes(table(), KEY, item(Decimal(10)), item("10"))) == [
        (TTL_SPACE, entry_prefix(10) + KEY, None, 0)
    ]


# --- expiry -------------------------------------------------------------------------------------


def test_an_item_expires_once_its_ttl_is_in_the_past() -> None:
    assert is_expired(Decimal(int(NOW) - 1), NOW)
    assert not is_expired(Decimal(int(NOW)), NOW)  # "less than the current time"
    assert not is_expired(Decimal(int(NOW) + 1), NOW)


def test_a_ttl_more_than_five_years_in_the_past_never_expires() -> None:
    assert is_expired(Decimal(NOW - MAX_PAST_SECONDS), NOW)
    assert not is_expired(Decimal(NOW - MAX_PAST_SECONDS - 1), NOW)


def test_the_sweep_range_holds_every_expired_entry_and_none_from_later_seconds() -> None:
    low, high = sweep_bounds(NOW + 0.5)
    assert low <= entry_prefix(int(NOW - MAX_PAST_SECONDS)) + KEY
    assert entry_prefix(int(NOW)) + KEY < high  # may expire within this second: checked again
    assert entry_prefix(int(NOW) + 1) >= high


# --- UpdateTimeToLive ---------------------------------------------------------------------------


def test_enabling_ttl_makes_it_enabling_on_that_attribute() -> None:
    updated = plan_ttl_update(table("DISABLED", None), True, "exp", NOW)
    assert (updated.ttl_status, updated.ttl_attribute, updated.ttl_changed) == ("ENABLING", "exp", NOW)


def test_disabling_ttl_makes_it_disabling() -> None:
    updated = plan_ttl_update(table("ENABLED", changed=NOW - 7200), False, "exp", NOW)
    assert updated.ttl_status == "DISABLING"


def test_enabling_an_enabled_ttl_is_refused() -> None:
    with pytest.raises(ValidationException, match=f"^{ALREADY_ENABLED}$"):
        plan_ttl_update(table("ENABLED"), True, "exp", NOW)


def test_disabling_a_ttl_that_was_never_enabled_is_refused() -> None:
    with pytest.raises(ValidationException, match=f"^{ALREADY_DISABLED}$"):
        plan_ttl_update(table("DISABLED", None), False, "exp", NOW)


@pytest.mark.parametrize("enabled", [True, False])
def test_naming_another_attribute_while_ttl_is_on_is_refused(enabled: bool) -> None:
    with pytest.raises(ValidationException) as caught:
        plan_ttl_update(table("ENABLED"), enabled, "other", NOW)
    assert caught.value.message == (
        "TimeToLive is active on a different AttributeName: current AttributeName is exp"
    )


def test_a_second_change_within_an_hour_is_refused() -> None:
    with pytest.raises(ValidationException, match=f"^{TOO_SOON}$"):
        plan_ttl_update(table("ENABLED", changed=NOW - 3599), False, "exp", NOW)
    assert plan_ttl_update(table("ENABLED", changed=NOW - 3600), False, "exp", NOW)


def test_the_state_is_checked_before_the_hourly_limit() -> None:
    with pytest.raises(ValidationException, match=f"^{ALREADY_ENABLED}$"):
        plan_ttl_update(table("ENABLED", changed=NOW - 1), True, "exp", NOW)


def test_the_description_names_the_attribute_unless_ttl_is_disabled() -> None:
    assert describe_ttl(table("ENABLING")) == {"TimeToLiveStatus": "ENABLING", "AttributeName": "exp"}
    assert describe_ttl(table("DISABLED", None)) == {"TimeToLiveStatus": "DISABLED"}


def test_a_request_without_enabled_or_attribute_name_is_refused_with_both_errors() -> None:
    with pytest.raises(ValidationException) as caught:
        parse_update_time_to_live({"TableName": "tbl", "TimeToLiveSpecification": {}})
    assert caught.value.message == (
        "2 validation errors detected: Value null at 'timeToLiveSpecification.enabled' failed to "
        "satisfy constraint: Member must not be null; Value null at "
        "'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must not be null"
    )


# --- the engine's --ttl-interval flag ---------------------------------------------------------


def test_the_sweep_interval_takes_fractions_of_a_second_and_defaults_to_30() -> None:
    parser = build_parser()
    assert parser.parse_args(["engine", "--ttl-interval", "0.2"]).ttl_interval == 0.2
    assert parser.parse_args(["engine"]).ttl_interval == DEFAULT_TTL_INTERVAL == 30.0


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_sweep_interval_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["engine", "--ttl-interval", value])


# --- the catalog -----------------------------------------------------------------------------------


def test_the_ttl_state_survives_the_catalog() -> None:
    saved = table("ENABLING", changed=NOW)
    assert TableDefinition.from_json(saved.to_json()) == saved


def test_a_catalog_entry_from_before_ttl_states_reads_as_disabled() -> None:
    plain = json.loads(table("DISABLED", None).to_json())
    del plain["ttl_status"], plain["ttl_changed"]
    loaded = TableDefinition.from_json(json.dumps(plain))
    assert (loaded.ttl_status, loaded.ttl_changed) == ("DISABLED", None)
