#!/usr/bin/env python3
"""What a global secondary index costs a write: PutItem ops/s with and without one, with wrk.

    hack/bench_gsi.py [--endpoint http://127.0.0.1:8000] [--duration 10] [--rounds 3]
                      [--connections 16] [--threads 2] [--item-bytes 200]

Without ``--endpoint`` it starts its own engine (``tablekeeper engine --auth none``) on
a fresh temporary data directory and stops it at the end, and then also reports the
engine's CPU time per 1000 puts. Setups, each a table of its own (``pk`` S, ``sk`` S,
on demand):

  no index        the baseline
  GSI KEYS_ONLY   one global index on ``gk`` (S), keys only
  GSI ALL         one global index on ``gk`` (S), the whole item projected

Every put writes a fresh item ``{pk, sk, gk, data}`` of about ``--item-bytes`` bytes
whose ``gk`` is one of 10,000 random values, so every item has an index entry and the
entries land all over the index, as the items do in the table. The setups run one after
another, ``--rounds`` times (alternating, so that drifting machine load favours none);
the report gives the median ops/s and p99 of each and the cost against the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Sample, add_wrk_arguments, client, cost_table, own_engine, require_wrk, rotated, wrk_put

SETUPS = ("no index", "GSI KEYS_ONLY", "GSI ALL")

# A PutItem per request with a fresh key and a random index key; done() prints the
# "TKWRK {...}" line of hack/wrk/dynamodb.lua. The Authorization header has SigV4's
# shape with an unverified signature (`--auth none` checks the shape only).
PUT_LUA = r"""
local table_name, item_bytes = "tkbench", 200
local counter, threads = 0, 0
local prefix, filler, headers

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  table_name = args[1] or table_name
  item_bytes = tonumber(args[2] or item_bytes)
  local id = tid or 0
  math.randomseed(os.time() + 7919 * id)
  prefix = string.format("gsi%x-%d", os.time(), id)
  filler = string.rep("x", math.max(1, item_bytes - (#prefix + 8) - 2 - 2 - 6 - 2 - 5 - 4))
  local amz_date = os.date("!%Y%m%dT%H%M%SZ")
  headers = {
    ["Content-Type"] = "application/x-amz-json-1.0",
    ["X-Amz-Target"] = "DynamoDB_20120810.PutItem",
    ["X-Amz-Date"] = amz_date,
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDTKBENCH/" .. amz_date:sub(1, 8)
      .. "/us-east-1/dynamodb/aws4_request, "
      .. "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
      .. string.rep("0", 64),
  }
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"TableName":"%s","Item":{"pk":{"S":"%s-%d"},"sk":{"S":"sk0000"},'
      .. '"gk":{"S":"g%04d"},"data":{"S":"%s"}}}',
    table_name, prefix, counter, math.random(0, 9999), filler)
  return wrk.format("POST", "/", headers, body)
end

function done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local failed = e.connect + e.read + e.write + e.timeout + e.status
  local ok = summary.requests - e.status
  local function ms(us) return us / 1000 end
  io.write(string.format('TKWRK {"op":"put","requests":%d,"ops_per_s":%.1f,"p50_ms":%.3f,'
    .. '"p99_ms":%.3f,"errors":%d}\n', ok, ok / seconds, ms(latency:percentile(50)),
    ms(latency:percentile(99)), failed))
end
"""


def create_tables(endpoint: str) -> dict[str, str]:
    """One table per setup; returns setup -> table name."""
    ddb = client(endpoint)
    suffix = os.urandom(3).hex()
    tables = {}
    for setup in SETUPS:
        name = f"tkbench-{setup.lower().replace(' ', '-').replace('_', '-')}-{suffix}"
        definitions = [{"AttributeName": "pk", "AttributeType": "S"},
                       {"AttributeName": "sk", "AttributeType": "S"}]
        extra: dict[str, Any] = {}
        if setup != "no index":
            definitions.append({"AttributeName": "gk", "AttributeType": "S"})
            extra["GlobalSecondaryIndexes"] = [{
                "IndexName": "byGk",
                "KeySchema": [{"AttributeName": "gk", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": setup.split()[1]},
            }]
        ddb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST", AttributeDefinitions=definitions,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            **extra,
        )
        tables[setup] = name
    return tables


def check_indexed(endpoint: str, tables: dict[str, str]) -> None:
    """Every put of an indexed setup left an entry in its index."""
    ddb = client(endpoint)
    for setup, table in tables.items():
        if setup == "no index":
            continue
        described = ddb.describe_table(TableName=table)["Table"]
        entries = described["GlobalSecondaryIndexes"][0]["ItemCount"]
        if entries != described["ItemCount"]:
            raise SystemExit(f"bench_gsi: {setup}: {entries} index entries for "
                             f"{described['ItemCount']} items")


def measure(endpoint: str, args: argparse.Namespace, pid: int | None = None) -> dict[str, list[Sample]]:
    tables = create_tables(endpoint)
    samples: dict[str, list[Sample]] = {setup: [] for setup in SETUPS}
    with tempfile.TemporaryDirectory(prefix="tk-bench-gsi-") as scratch:
        script = Path(scratch) / "put_gsi.lua"
        script.write_text(PUT_LUA)
        for round_number in range(1, args.rounds + 1):
            for setup in rotated(SETUPS, round_number):
                script_args = [tables[setup], str(args.item_bytes)]
                sample = wrk_put("bench_gsi", endpoint, script, script_args, args, pid)
                samples[setup].append(sample)
                print(f"round {round_number} {setup}: {sample.ops_per_s:.0f} ops/s, "
                      f"p99 {sample.p99_ms:.2f} ms", file=sys.stderr)
    check_indexed(endpoint, tables)
    return samples


def report(samples: dict[str, list[Sample]], args: argparse.Namespace) -> str:
    return cost_table(samples, SETUPS, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    add_wrk_arguments(parser)
    args = parser.parse_args(argv)
    require_wrk("bench_gsi")
    if args.endpoint:
        samples = measure(args.endpoint, args)
    else:
        with own_engine("bench-gsi") as (endpoint, pid):
            samples = measure(endpoint, args, pid)
    print(report(samples, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
