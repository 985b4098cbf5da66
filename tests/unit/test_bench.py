"""The pure parts of `tablekeeper bench`: histograms, aggregation, requests, arguments."""

from __future__ import annotations

import argparse
import datetime
import json
import random

import pytest

from tablekeeper import bench

FIXED_NOW = datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=datetime.UTC)


def histogram_of(values: list[int]) -> bench.LatencyHistogram:
    histogram = bench.LatencyHistogram()
    for value in values:
        histogram.record(value)
    return histogram


# ------------------------------------------------------------------ histogram


def test_every_value_falls_inside_the_bounds_of_its_bucket() -> None:
    values = [*range(0, 5000), *(random.Random(1).randrange(10**9) for _ in range(5000))]
    for value in values:
        low, high = bench.bucket_bounds(bench.bucket_of(value))
        assert low <= value <= high


def test_a_bucket_is_narrower_than_one_percent_of_its_values() -> None:
    for value in (300, 1_234, 56_789, 3_000_000, 2**40 + 17):
        low, high = bench.bucket_bounds(bench.bucket_of(value))
        assert (high - low) / low < 0.01


def test_buckets_are_contiguous_and_ordered() -> None:
    for index in range(1, 3000):
        assert bench.bucket_bounds(index)[0] == bench.bucket_bounds(index - 1)[1] + 1


def test_percentiles_of_a_uniform_run_are_within_one_percent() -> None:
    histogram = histogram_of(list(range(1, 100_001)))
    assert histogram.percentile(50) == pytest.approx(50_000, rel=0.01)
    assert histogram.percentile(99) == pytest.approx(99_000, rel=0.01)
    assert histogram.percentile(100) == 100_000


def test_small_latencies_are_exact() -> None:
    histogram = histogram_of([10, 20, 30, 40])
    assert histogram.percentile(50) == 20
    assert histogram.percentile(75) == 30


def test_a_percentile_never_exceeds_the_exact_maximum() -> None:
    histogram = histogram_of([1_000_001])
    assert histogram.max_us == 1_000_001
    assert histogram.percentile(99) == 1_000_001


def test_an_empty_histogram_reports_zero() -> None:
    histogram = bench.LatencyHistogram()
    assert histogram.percentile(99) == 0
    assert histogram.mean_us() == 0.0


def test_merging_histograms_equals_recording_everything_in_one() -> None:
    rng = random.Random(7)
    left = [rng.randrange(100, 50_000) for _ in range(3000)]
    right = [rng.randrange(1_000, 900_000) for _ in range(1000)]
    merged = histogram_of(left)
    merged.merge(histogram_of(right))
    assert merged == histogram_of(left + right)


# ------------------------------------------------------------------ aggregation


def test_aggregate_sums_counts_and_divides_by_the_longest_elapsed_time() -> None:
    first = bench.WorkerResult(histogram=histogram_of([1000] * 300), errors=2, elapsed=10.0,
                               cpu_pct=40.0)
    first.error_types.update({"ThrottlingException": 2})
    second = bench.WorkerResult(histogram=histogram_of([3000] * 100), errors=1, elapsed=9.5,
                                cpu_pct=75.0)
    second.error_types.update({"ThrottlingException": 1})
    report = bench.aggregate("put", [first, second])
    assert report.requests == 400
    assert report.ops_per_s == pytest.approx(40.0)
    assert report.p50_ms == pytest.approx(1.0, rel=0.01)
    assert report.p99_ms == pytest.approx(3.0, rel=0.01)
    assert report.max_ms == 3.0
    assert report.errors == 3
    assert report.error_types == {"ThrottlingException": 3}
    assert report.client_cpu_pct == 75.0


def test_aggregate_of_nothing_reports_zero_throughput() -> None:
    report = bench.aggregate("get", [bench.WorkerResult()])
    assert report.requests == 0
    assert report.ops_per_s == 0.0


@pytest.mark.parametrize(("connections", "processes"), [(16, 2), (16, 3), (5, 8), (1, 1)])
def test_connections_are_shared_out_evenly_and_none_is_left_empty(
    connections: int, processes: int
) -> None:
    shares = bench.split_connections(connections, processes)
    assert sum(shares) == connections
    assert min(shares) >= 1
    assert max(shares) - min(shares) <= 1


# ------------------------------------------------------------------ requests


def test_endpoint_keeps_a_non_default_port_in_the_host_header() -> None:
    endpoint = bench.parse_endpoint("http://127.0.0.1:8000/")
    assert (endpoint.host, endpoint.port, endpoint.host_header) == ("127.0.0.1", 8000, "127.0.0.1:8000")


def test_endpoint_drops_the_default_port_from_the_host_header() -> None:
    assert bench.parse_endpoint("http://localhost:80").host_header == "localhost"


@pytest.mark.parametrize("url", ["ftp://host", "http://host/some/path", "127.0.0.1:8000"])
def test_endpoint_rejects_what_it_cannot_reach(url: str) -> None:
    with pytest.raises(ValueError, match="parse endpoint"):
        bench.parse_endpoint(url)


def test_signature_matches_botocore_for_the_same_request_and_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = bench.get_item_body("tkbench", "pk00000001", "sk0003")
    target = "DynamoDB_20120810.GetItem"
    request = AWSRequest(method="POST", url="http://127.0.0.1:8000/", data=body,
                         headers={"Content-Type": bench.CONTENT_TYPE, "X-Amz-Target": target})
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: FIXED_NOW)
    credentials = Credentials(bench.ACCESS_KEY, bench.SECRET_KEY)
    botocore_auth.SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(request)

    signer = bench.SigV4Signer("127.0.0.1:8000", "eu-west-1", clock=FIXED_NOW.timestamp)
    amz_date, authorization = signer.sign(target, body)
    assert amz_date == request.headers["X-Amz-Date"]
    assert authorization == request.headers["Authorization"]


def test_an_encoded_request_carries_target_length_and_body() -> None:
    endpoint = bench.parse_endpoint("http://127.0.0.1:8000")
    signer = bench.SigV4Signer(endpoint.host_header, "us-east-1", clock=FIXED_NOW.timestamp)
    raw = bench.encode_request(endpoint, signer, "PutItem", b'{"a":1}')
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST / HTTP/1.1\r\n")
    assert b"\r\nX-Amz-Target: DynamoDB_20120810.PutItem" in head
    assert b"\r\nContent-Length: 7" in head
    assert body == b'{"a":1}'


def dynamodb_item_size(item: dict[str, dict[str, str]]) -> int:
    return sum(len(name) + len(value["S"]) for name, value in item.items())


def test_put_writes_a_fresh_key_per_request_of_about_the_asked_size() -> None:
    workload = bench.Workload("put", "tkbench", 200, preloaded=1000, prefix="wab0")
    rng = random.Random(0)
    keys = set()
    for counter in range(100):
        operation, body = workload.next_request(rng, conn=3, counter=counter)
        item = json.loads(body)["Item"]
        assert operation == "PutItem"
        assert dynamodb_item_size(item) == pytest.approx(200, abs=2)
        keys.add((item["pk"]["S"], item["sk"]["S"]))
    assert len(keys) == 100


def test_reads_only_ask_for_preloaded_keys() -> None:
    preloaded = {bench.preload_key(i) for i in range(95)}
    rng = random.Random(0)
    get = bench.Workload("get", "t01", 200, preloaded=95, prefix="p")
    query = bench.Workload("query", "t01", 200, preloaded=95, prefix="p")
    for counter in range(500):
        _, body = get.next_request(rng, 0, counter)
        key = json.loads(body)["Key"]
        assert (key["pk"]["S"], key["sk"]["S"]) in preloaded
        _, body = query.next_request(rng, 0, counter)
        pk = json.loads(body)["ExpressionAttributeValues"][":p"]["S"]
        assert (pk, "sk0000") in preloaded


def test_mix_sends_puts_and_gets_about_half_and_half() -> None:
    workload = bench.Workload("mix", "t01", 200, preloaded=100, prefix="p")
    rng = random.Random(3)
    operations = [workload.next_request(rng, 0, n)[0] for n in range(2000)]
    assert set(operations) == {"PutItem", "GetItem"}
    assert operations.count("PutItem") == pytest.approx(1000, abs=100)


def test_a_read_that_finds_nothing_is_a_miss() -> None:
    assert bench.is_miss("GetItem", b"{}")
    assert not bench.is_miss("GetItem", b'{"Item":{}}')
    assert bench.is_miss("Query", b'{"Count":0,"Items":[],"ScannedCount":0}')
    assert not bench.is_miss("Query", b'{"Count":10,"Items":[]}')
    assert not bench.is_miss("PutItem", b"{}")


def test_error_type_is_the_name_after_the_hash() -> None:
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"x"}'
    assert bench.error_type(body) == "ResourceNotFoundException"
    assert bench.error_message(body) == "x"
    assert bench.error_type(b"<html>") == "unparseable error body"


# ------------------------------------------------------------------ arguments


def parse(*argv: str) -> argparse.Namespace:
    return bench.build_parser().parse_args(["--endpoint", "http://127.0.0.1:8000", *argv])


def test_defaults_are_sixteen_connections_ten_seconds_all_ops_200_byte_items() -> None:
    args = parse()
    assert args.connections == 16
    assert args.duration == 10.0
    assert args.ops == bench.OPS
    assert args.item_bytes == 200
    assert args.region == "us-east-1"
    assert args.output == "text"
    assert args.table is None


def test_ops_are_a_comma_separated_list() -> None:
    assert parse("--ops", "put, query").ops == ("put", "query")


@pytest.mark.parametrize(
    "argv",
    [
        ["--ops", "put,scan"],
        ["--ops", ","],
        ["--connections", "0"],
        ["--duration", "-1"],
        ["--warmup", "-1"],
        ["--output", "xml"],
        ["--table", "no spaces allowed"],
    ],
)
def test_bad_arguments_exit_with_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        parse(*argv)
    assert exc_info.value.code == 2


def test_add_arguments_extends_another_parser() -> None:
    parser = argparse.ArgumentParser(prog="tablekeeper")
    commands = parser.add_subparsers(dest="command")
    bench.add_arguments(commands.add_parser("bench"))
    args = parser.parse_args(["bench", "--endpoint", "http://h:1", "--output", "json"])
    assert (args.command, args.endpoint, args.output) == ("bench", "http://h:1", "json")


def test_config_names_a_fresh_table_unless_one_is_given() -> None:
    generated = bench.BenchConfig.from_args(parse())
    assert generated.table.startswith("tkbench-")
    assert bench.BenchConfig.from_args(parse("--table", "mine")).table == "mine"
    assert not bench.BenchConfig.from_args(parse("--ops", "put")).needs_preload()


def test_text_output_has_a_row_per_op() -> None:
    config = bench.BenchConfig.from_args(parse("--processes", "2"))
    reports = [bench.aggregate(op, [bench.WorkerResult(histogram=histogram_of([2000]),
                                                       elapsed=1.0)]) for op in ("put", "get")]
    lines = bench.format_text(config, reports).splitlines()
    assert "16 connections over 2 processes" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["put", "get"]
    assert json.loads(bench.format_json(config, reports))["results"][1]["op"] == "get"


def test_a_table_that_already_existed_is_never_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    deleted: list[str] = []

    async def refuse(config: bench.BenchConfig) -> None:
        raise bench.BenchError(f"create table {config.table}: it already exists")

    async def teardown(config: bench.BenchConfig) -> None:
        deleted.append(config.table)

    monkeypatch.setattr(bench, "_create", refuse)
    monkeypatch.setattr(bench, "_teardown", teardown)
    with pytest.raises(bench.BenchError, match="already exists"):
        bench.run_bench(bench.BenchConfig.from_args(parse("--table", "precious")))
    assert deleted == []


def test_the_created_table_is_deleted_when_the_preload_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deleted: list[str] = []

    async def create(config: bench.BenchConfig) -> None:
        return None

    async def fail(config: bench.BenchConfig) -> None:
        raise bench.BenchError("preload: refused")

    async def teardown(config: bench.BenchConfig) -> None:
        deleted.append(config.table)

    monkeypatch.setattr(bench, "_create", create)
    monkeypatch.setattr(bench, "_fill", fail)
    monkeypatch.setattr(bench, "_teardown", teardown)
    with pytest.raises(bench.BenchError, match="refused"):
        bench.run_bench(bench.BenchConfig.from_args(parse("--table", "mine", "--output", "json")))
    assert deleted == ["mine"]
