"""The HTTP face of the engine: health, pipelining, limits, bad input, SigV4."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from tablekeeper.engine.server import ServerOptions, effective_auth
from tests.conftest import EngineProcess, create_table, make_client, start_engine, unique_name


def _address(engine: EngineProcess) -> tuple[str, int]:
    url = urlparse(engine.endpoint)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def _request(target: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: {target}\r\n"
        f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def _read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    data = b""
    responses: list[tuple[int, bytes]] = []
    while len(responses) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        while b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            length = next(
                int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length")
            )
            if len(rest) < length:
                break
            responses.append((int(lines[0].split()[1]), rest[:length]))
            data = rest[length:]
    return responses


def test_get_answers_a_health_line(engine: EngineProcess) -> None:
    with socket.create_connection(_address(engine)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        [(status, body)] = _read_responses(sock, 1)
    assert status == 200
    assert body.startswith(b"healthy: dynamodb.")


def test_pipelined_requests_are_answered_in_order(engine: EngineProcess) -> None:
    names = [unique_name() for _ in range(3)]
    payload = b"".join(
        _request("DynamoDB_20120810.DescribeTable", json.dumps({"TableName": name}).encode())
        for name in names
    )
    with socket.create_connection(_address(engine)) as sock:
        sock.sendall(payload)
        responses = _read_responses(sock, 3)
    assert [json.loads(body)["message"] for _, body in responses] == [
        f"Requested resource not found: Table: {name} not found" for name in names
    ]


def test_malformed_http_gets_400_and_the_server_keeps_serving(engine: EngineProcess) -> None:
    with socket.create_connection(_address(engine)) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        [(status, _)] = _read_responses(sock, 1)
    assert status == 400
    assert "TableNames" in engine.client().list_tables()


def test_a_body_over_16_mb_is_refused_with_413(engine: EngineProcess) -> None:
    body = b"{" + b" " * (17 * 1024 * 1024) + b"}"
    with socket.create_connection(_address(engine)) as sock:
        # The server may close before reading everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(_request("DynamoDB_20120810.ListTables", body))
        responses = _read_responses(sock, 1)
    assert responses and responses[0][0] == 413
    assert "TableNames" in engine.client().list_tables()


def test_responses_carry_a_request_id_and_a_crc32_botocore_checks(engine: EngineProcess) -> None:
    response = engine.client().list_tables()
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert len(headers["x-amzn-requestid"]) == 52
    assert headers["x-amz-crc32"].isdigit()


# --- SigV4 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    data = tmp_path_factory.mktemp("signed")
    credentials = data / "creds"
    credentials.write_text("# test keys\nAKIDGOOD:goodsecret\n")
    engine = start_engine(data / "data", "--auth", "sigv4", "--credentials", str(credentials))
    yield engine
    engine.stop()


def test_sigv4_accepts_a_request_signed_with_configured_credentials(
    signed_engine: EngineProcess,
) -> None:
    client = make_client(signed_engine.endpoint, aws_access_key_id="AKIDGOOD",
                         aws_secret_access_key="goodsecret")
    name = create_table(client, unique_name())
    client.put_item(TableName=name, Item={"pk": {"S": "a"}})
    assert client.get_item(TableName=name, Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}


def test_sigv4_refuses_an_unknown_access_key(signed_engine: EngineProcess) -> None:
    client = make_client(signed_engine.endpoint, aws_access_key_id="AKIDUNKNOWN",
                         aws_secret_access_key="goodsecret")
    with pytest.raises(ClientError) as info:
        client.list_tables()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert info.value.response["Error"]["Message"] == (
        "The security token included in the request is invalid."
    )


def test_sigv4_refuses_a_wrong_signature(signed_engine: EngineProcess) -> None:
    client = make_client(signed_engine.endpoint, aws_access_key_id="AKIDGOOD",
                         aws_secret_access_key="wrongsecret")
    with pytest.raises(ClientError) as info:
        client.list_tables()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["Error"]["Message"].startswith(
        "The request signature we calculated does not match the signature you provided."
    )


def test_sigv4_refuses_an_unsigned_request(signed_engine: EngineProcess) -> None:
    with socket.create_connection(_address(signed_engine)) as sock:
        sock.sendall(_request("DynamoDB_20120810.ListTables", b"{}"))
        [(status, body)] = _read_responses(sock, 1)
    assert status == 400
    assert json.loads(body) == {
        "__type": "com.amazon.coral.service#MissingAuthenticationTokenException",
        "message": "Request is missing Authentication Token",
    }


def test_auth_defaults_to_sigv4_off_loopback_and_none_on_it() -> None:
    data = Path("/nonexistent")
    assert effective_auth(ServerOptions(data, host="127.0.0.1")) == "none"
    assert effective_auth(ServerOptions(data, host="::1")) == "none"
    assert effective_auth(ServerOptions(data, host="localhost")) == "none"
    assert effective_auth(ServerOptions(data, host="0.0.0.0")) == "sigv4"
    assert effective_auth(ServerOptions(data, host="10.1.2.3")) == "sigv4"
    assert effective_auth(ServerOptions(data, host="0.0.0.0", auth="none")) == "none"


def test_sigv4_without_a_credentials_file_generates_one_readable_only_by_its_owner(
    tmp_path: Path,
) -> None:
    engine = start_engine(tmp_path, "--auth", "sigv4")
    try:
        path = tmp_path / "credentials"
        assert path.stat().st_mode & 0o777 == 0o600
        key_id, secret = path.read_text().strip().split(":")
        client = make_client(engine.endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret)
        assert "TableNames" in client.list_tables()
    finally:
        engine.stop()
