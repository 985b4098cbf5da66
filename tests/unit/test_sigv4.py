"""SigV4 verification: requests signed by botocore, checked as DynamoDB checks them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials as BotoCredentials

from tablekeeper.engine.errors import (
    DynamoDBError,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from tablekeeper.engine.protocol.sigv4 import (
    Credentials,
    CredentialsFileError,
    CredentialStore,
    generate_credentials,
    verify,
)

KEY_ID = "TKTESTKEYAAAAAAAAAAA"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
STORE = CredentialStore([Credentials(KEY_ID, SECRET)])
NOW = datetime(2024, 5, 24, 12, 0, 0, tzinfo=UTC)
ENDPOINT = "http://dynamodb.local:8000/"
PUT_ITEM = b'{"TableName":"orders","Item":{"pk":{"S":"a#1"},"qty":{"N":"3"}}}'
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class Request(NamedTuple):
    """A request as the HTTP layer hands it to verify()."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def with_header(self, name: str, value: str) -> Request:
        return self._replace(headers={**self.headers, name: value})

    def without_header(self, name: str) -> Request:
        return self._replace(headers={k: v for k, v in self.headers.items() if k != name})


def sign(
    body: bytes = PUT_ITEM,
    *,
    url: str = ENDPOINT,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    token: str | None = None,
    region: str = "us-east-1",
    service: str = "dynamodb",
    at: datetime = NOW,
    presign_expires: int | None = None,
) -> Request:
    """Sign a DynamoDB-shaped request with botocore at time ``at``.

    With ``presign_expires`` it is a presigned request (auth in the query
    string) carrying no headers but Host and ``headers``.
    """
    credentials = BotoCredentials(key_id, secret, token)
    signer: SigV4Auth
    if presign_expires is None:
        signer = SigV4Auth(credentials, service, region)
        dynamodb_headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.PutItem",
            "User-Agent": "Boto3/1.34 test",
        }
    else:
        signer = SigV4QueryAuth(credentials, service, region, expires=presign_expires)
        dynamodb_headers = {}
    all_headers = {"Host": urlsplit(url).netloc, **dynamodb_headers, **(headers or {})}
    request = AWSRequest(method, url, data=body, headers=all_headers, params=dict(params or {}))
    naive_utc = at.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive_utc):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    return Request(
        method=prepared.method,
        path=parts.path,
        query=parts.query,
        headers={name.lower(): value for name, value in prepared.headers.items()},
        body=prepared.body or b"",
    )


def check(request: Request, *, now: datetime = NOW, store: CredentialStore = STORE) -> str:
    return verify(
        request.method,
        request.path,
        request.query,
        request.headers,
        request.body,
        store,
        now,
    )


def reject(request: Request, error: type[DynamoDBError], *, now: datetime = NOW) -> str:
    """The message of the error ``error`` that verifying ``request`` raises."""
    with pytest.raises(error) as raised:
        check(request, now=now)
    return raised.value.message or ""


def unsigned(headers: Mapping[str, str] | None = None, query: str = "") -> Request:
    base = {
        "host": "dynamodb.local:8000",
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "DynamoDB_20120810.ListTables",
        "x-amz-date": "20240524T120000Z",
    }
    return Request("POST", "/", query, {**base, **(headers or {})}, b"{}")


def with_authorization(request: Request, **changes: str) -> Request:
    """The same request with parts of its Authorization header replaced."""
    algorithm, _, rest = request.headers["authorization"].partition(" ")
    parts = dict(part.split("=", 1) for part in rest.split(", "))
    algorithm = changes.pop("algorithm", algorithm)
    parts.update(changes)
    header = f"{algorithm} " + ", ".join(f"{name}={value}" for name, value in parts.items())
    return request.with_header("authorization", header)


# --- accepted requests ----------------------------------------------------------


def test_a_request_signed_by_botocore_is_accepted_and_names_its_key() -> None:
    assert check(sign()) == KEY_ID


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "local", "ddblocal"])
def test_any_region_is_accepted(region: str) -> None:
    assert check(sign(region=region)) == KEY_ID


def test_an_empty_body_is_signed_as_the_hash_of_nothing() -> None:
    assert check(sign(b"")) == KEY_ID


def test_the_key_that_signed_is_returned_when_the_store_holds_several() -> None:
    store = CredentialStore([Credentials(KEY_ID, SECRET), Credentials("TKOTHER", "other/secret")])
    assert check(sign(key_id="TKOTHER", secret="other/secret"), store=store) == "TKOTHER"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _sent_by_client(service: str, call: str, **kwargs: Any) -> Request:
    """What a real boto3 client sends for one call, captured before it leaves."""
    session = boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="eu-west-1"
    )
    client = session.client(service, endpoint_url="http://localhost:8000")
    sent = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _Body(b"{}"))

    client.meta.events.register("before-send", capture)
    naive_utc = NOW.replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive_utc):
        getattr(client, call)(**kwargs)
    (request,) = sent
    parts = urlsplit(request.url)
    headers = {name.lower(): _text(value) for name, value in request.headers.items()}
    headers.setdefault("host", parts.netloc)  # the HTTP client adds it on the wire
    return Request(request.method, parts.path, parts.query, headers, request.body or b"")


def test_a_boto3_dynamodb_client_request_is_accepted() -> None:
    request = _sent_by_client("dynamodb", "put_item", TableName="orders", Item={"pk": {"S": "a#1"}})
    assert check(request) == KEY_ID


def test_a_boto3_dynamodb_streams_client_request_is_accepted() -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2024-05-24T00:00:00.000"
    request = _sent_by_client("dynamodbstreams", "describe_stream", StreamArn=arn)
    assert request.headers["x-amz-target"].startswith("DynamoDBStreams_20120810.")
    assert check(request) == KEY_ID


# --- tampering -------------------------------------------------------------------


def test_a_tampered_body_is_rejected() -> None:
    request = sign()._replace(body=PUT_ITEM.replace(b'"3"', b'"300"'))
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


def test_a_tampered_signed_header_is_rejected() -> None:
    request = sign().with_header("x-amz-target", "DynamoDB_20120810.DeleteTable")
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


def test_a_missing_signed_header_is_rejected() -> None:
    request = sign().without_header("content-type")
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


def test_an_unsigned_header_may_change() -> None:
    request = sign().with_header("user-agent", "something else")
    assert check(request) == KEY_ID


def test_a_tampered_method_is_rejected() -> None:
    assert reject(sign()._replace(method="PUT"), InvalidSignatureException) == SIGNATURE_MISMATCH


def test_a_tampered_path_is_rejected() -> None:
    assert reject(sign()._replace(path="/other"), InvalidSignatureException) == SIGNATURE_MISMATCH


def test_a_signature_made_with_the_wrong_secret_is_rejected() -> None:
    request = sign(secret="not-the-secret")
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


def test_a_signature_scoped_to_another_region_than_signed_is_rejected() -> None:
    request = sign(region="us-east-1")
    credential = f"{KEY_ID}/20240524/eu-west-1/dynamodb/aws4_request"
    assert reject(with_authorization(request, Credential=credential), InvalidSignatureException)


@pytest.mark.parametrize("signature", ["0" * 64, "abc", "é" * 64, "Z" * 200])
def test_a_forged_signature_is_rejected(signature: str) -> None:
    request = with_authorization(sign(), Signature=signature)
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


# --- credentials and tokens ------------------------------------------------------


def test_an_unknown_access_key_is_unrecognized() -> None:
    request = sign(key_id="TKUNKNOWNKEY")
    message = reject(request, UnrecognizedClientException)
    assert message == "The security token included in the request is invalid."


def test_a_request_with_a_session_token_is_accepted() -> None:
    request = sign(token="FQoGZXIvYXdzEXAMPLETOKEN//")
    assert "x-amz-security-token" in request.headers["authorization"]
    assert check(request) == KEY_ID


def test_a_tampered_session_token_is_rejected() -> None:
    request = sign(token="FQoGZXIvYXdzEXAMPLETOKEN//").with_header("x-amz-security-token", "another-token")
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


# --- missing and incomplete authentication ---------------------------------------


def test_a_request_without_authorization_is_missing_a_token() -> None:
    message = reject(unsigned(), MissingAuthenticationTokenException)
    assert message == "Request is missing Authentication Token"


@pytest.mark.parametrize("header", ["AWS4", "Bearer abc", "AWS TKTESTKEY:c2lnbmF0dXJl", ""])
def test_an_authorization_header_that_is_not_sigv4_is_missing_a_token(header: str) -> None:
    request = unsigned({"authorization": header})
    assert reject(request, MissingAuthenticationTokenException)


def test_query_auth_parameters_without_x_amz_algorithm_are_missing_a_token() -> None:
    query = "X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=c&X-Amz-Date=d"
    assert reject(unsigned(query=query), MissingAuthenticationTokenException)


def test_an_authorization_header_and_query_auth_together_are_invalid() -> None:
    request = unsigned({"authorization": "X"}, query="X-Amz-Algorithm")
    message = reject(request, InvalidSignatureException)
    assert message == (
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )


def test_an_incomplete_authorization_header_names_every_missing_part() -> None:
    request = unsigned({"authorization": "AWS4-"}).without_header("x-amz-date")
    message = reject(request, IncompleteSignatureException)
    assert message == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or "
        "a 'Date' header. Authorization=AWS4-"
    )


@pytest.mark.parametrize(
    "header",
    [
        "AWS4- Signature=b Credential=a",
        "AWS4- Signature=b,Credential=a",
        "AWS4- Signature=b, Credential=a",
    ],
)
def test_authorization_parts_may_be_separated_by_commas_or_spaces(header: str) -> None:
    request = unsigned({"authorization": header, "date": "a"}).without_header("x-amz-date")
    message = reject(request, IncompleteSignatureException)
    assert message == f"Authorization header requires 'SignedHeaders' parameter. Authorization={header}"


def test_an_authorization_part_without_an_equals_sign_is_incomplete() -> None:
    header = "AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders"
    message = reject(unsigned({"authorization": header}), IncompleteSignatureException)
    assert message == (
        "'Credential' not a valid key=value pair (missing equal-sign) in Authorization "
        "header: 'AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders'."
    )


def test_host_must_be_a_signed_header() -> None:
    request = with_authorization(sign(), SignedHeaders="content-type;x-amz-date;x-amz-target")
    message = reject(request, InvalidSignatureException)
    assert message == "'Host' must be a 'SignedHeader' in the AWS Authorization."


def test_an_unsupported_algorithm_is_incomplete() -> None:
    request = with_authorization(sign(), algorithm="AWS4-HMAC-SHA25")
    message = reject(request, IncompleteSignatureException)
    assert message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA25' (only AWS4-HMAC-SHA256 for now). "


def test_a_credential_without_five_elements_is_incomplete() -> None:
    request = with_authorization(sign(), Credential="a/b/c/d")
    message = reject(request, IncompleteSignatureException)
    assert message == (
        "Credential must have exactly 5 slash-delimited elements, "
        "e.g. keyid/date/region/service/term, got 'a/b/c/d'"
    )


def test_a_trailing_slash_on_the_credential_is_ignored() -> None:
    credential = f"{KEY_ID}/20240524/us-east-1/dynamodb/aws4_request/"
    assert check(with_authorization(sign(), Credential=credential)) == KEY_ID


def test_a_credential_scoped_to_another_service_is_invalid() -> None:
    message = reject(sign(service="dynamodbstreams"), InvalidSignatureException)
    assert message == "Credential should be scoped to correct service: 'dynamodb'."


def test_a_wrongly_scoped_credential_lists_every_problem() -> None:
    request = with_authorization(sign(), Credential=f"{KEY_ID}/20240523//s3/aws4")
    message = reject(request, InvalidSignatureException)
    assert message == (
        "Credential should be scoped to a valid region, not ''. "
        "Credential should be scoped to correct service: 'dynamodb'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
        "from HTTP: '20240523' != '20240524', from '20240524T120000Z'."
    )


# --- dates -----------------------------------------------------------------------


def test_a_request_signed_more_than_15_minutes_ago_has_expired() -> None:
    request = sign(at=datetime(2024, 5, 24, 0, 0, 0, tzinfo=UTC))
    message = reject(request, InvalidSignatureException, now=datetime(2024, 5, 24, 0, 30, tzinfo=UTC))
    assert message == (
        "Signature expired: 20240524T000000Z is now earlier than 20240524T001500Z "
        "(20240524T003000Z - 15 min.)"
    )


def test_a_request_signed_exactly_15_minutes_ago_is_accepted() -> None:
    assert check(sign(), now=NOW + timedelta(minutes=15)) == KEY_ID


def test_a_request_signed_more_than_15_minutes_ahead_is_not_yet_current() -> None:
    request = sign(at=NOW + timedelta(minutes=16))
    message = reject(request, InvalidSignatureException)
    assert message == (
        "Signature not yet current: 20240524T121600Z is still later than 20240524T121500Z "
        "(20240524T120000Z + 15 min.)"
    )


def test_a_naive_now_is_taken_as_utc() -> None:
    assert check(sign(), now=NOW.replace(tzinfo=None)) == KEY_ID


@pytest.mark.parametrize("date", ["201", "2024-05-24T12:00:00Z", "20241324T120000Z", "20240524T120000"])
def test_an_x_amz_date_not_in_iso_8601_basic_format_is_incomplete(date: str) -> None:
    request = sign().with_header("x-amz-date", date)
    message = reject(request, IncompleteSignatureException)
    assert message == (
        f"Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_a_date_header_in_http_format_is_accepted_without_x_amz_date() -> None:
    request = sign(headers={"Date": "placeholder"})  # botocore rewrites it as RFC 1123
    assert "x-amz-date" not in request.headers
    assert check(request) == KEY_ID


@pytest.mark.parametrize("date", ["yesterday", "20240524"])
def test_a_date_header_in_neither_format_is_incomplete(date: str) -> None:
    request = sign(headers={"Date": "placeholder"}).with_header("date", date)
    message = reject(request, IncompleteSignatureException)
    assert message.startswith(f"Date must be in ISO-8601 'basic format'. Got '{date}'.")


def test_a_tampered_date_is_rejected() -> None:
    request = sign().with_header("x-amz-date", "20240524T120001Z")
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


# --- canonicalisation ------------------------------------------------------------


def test_header_names_may_arrive_in_any_case() -> None:
    request = sign()
    mixed = {
        name.title() if i % 2 else name.upper(): value
        for i, (name, value) in enumerate(request.headers.items())
    }
    assert check(request._replace(headers=mixed)) == KEY_ID


def test_signed_header_names_are_matched_case_insensitively() -> None:
    request = sign()
    names = "Content-Length;Content-Type;Host;X-Amz-Date;X-Amz-Target"
    assert reject(with_authorization(request, SignedHeaders=names), InvalidSignatureException)
    signed_names = request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    upper = with_authorization(request, SignedHeaders=signed_names.upper())
    assert check(upper) == KEY_ID


def test_header_values_are_compared_trimmed_with_inner_whitespace_collapsed() -> None:
    request = sign(headers={"X-Custom": "  two   words  "})
    assert check(request.with_header("x-custom", "two words")) == KEY_ID


def test_a_utf8_header_value_arriving_as_latin1_is_accepted() -> None:
    request = sign(headers={"X-Custom": "café ☕"})
    on_the_wire = "café ☕".encode().decode("latin-1")
    assert check(request.with_header("x-custom", on_the_wire)) == KEY_ID


def test_a_matching_x_amz_content_sha256_header_is_accepted() -> None:
    digest = hashlib.sha256(PUT_ITEM).hexdigest()
    assert check(sign(headers={"X-Amz-Content-SHA256": digest})) == KEY_ID


def test_an_unsigned_payload_claim_does_not_exempt_the_body() -> None:
    request = sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert reject(request, InvalidSignatureException) == SIGNATURE_MISMATCH


@pytest.mark.parametrize(
    "params",
    [
        {"b": "2", "a": "1"},
        {"key": "a value/with=reserved&chars~-_.", "empty": ""},
        {"unicode": "café ☕", "plus": "1+1"},
    ],
)
def test_query_parameters_are_accepted_whatever_their_order_and_characters(
    params: dict[str, str],
) -> None:
    assert check(sign(params=params)) == KEY_ID


def test_a_query_string_signed_as_sent_is_accepted() -> None:
    request = sign(url=ENDPOINT + "?zeta=1&alpha=2&alpha=1&mid=a%20b")
    assert check(request) == KEY_ID


def test_a_tampered_query_parameter_is_rejected() -> None:
    request = sign(params={"limit": "10"})
    assert reject(request._replace(query="limit=11"), InvalidSignatureException)


@pytest.mark.parametrize("path", ["/a/b", "/a/./b/../c//d/", "/with%20space/x%2Fy", ""])
def test_request_paths_are_canonicalised_as_botocore_signs_them(path: str) -> None:
    request = sign(url="http://dynamodb.local:8000" + path)
    assert check(request._replace(path=path)) == KEY_ID


# --- presigned query-string auth ---------------------------------------------------


def test_a_presigned_request_is_accepted() -> None:
    request = sign(b"", method="GET", presign_expires=300)
    assert "authorization" not in request.headers
    assert "X-Amz-Signature=" in request.query
    assert check(request) == KEY_ID


def test_a_presigned_request_with_a_session_token_is_accepted() -> None:
    request = sign(b"", method="GET", presign_expires=300, token="FQoGZXIvYXdzTOKEN")
    assert "X-Amz-Security-Token=" in request.query
    assert check(request) == KEY_ID


def test_a_presigned_request_is_accepted_until_it_expires() -> None:
    request = sign(b"", method="GET", presign_expires=3600)
    assert check(request, now=NOW + timedelta(minutes=60)) == KEY_ID


def test_a_presigned_request_past_its_expiry_has_expired() -> None:
    request = sign(b"", method="GET", presign_expires=300)
    message = reject(request, InvalidSignatureException, now=NOW + timedelta(seconds=301))
    assert message == (
        "Signature expired: 20240524T120000Z is now earlier than 20240524T120001Z "
        "(20240524T120501Z - 300 sec.)"
    )


def test_a_presigned_request_with_a_tampered_expiry_is_rejected() -> None:
    request = sign(b"", method="GET", presign_expires=300)
    query = request.query.replace("X-Amz-Expires=300", "X-Amz-Expires=3000")
    assert reject(request._replace(query=query), InvalidSignatureException) == SIGNATURE_MISMATCH


@pytest.mark.parametrize("expires", ["soon", "-1", "604801"])
def test_a_presigned_expiry_that_is_not_up_to_a_week_of_seconds_is_incomplete(
    expires: str,
) -> None:
    request = sign(b"", method="GET", presign_expires=300)
    query = request.query.replace("X-Amz-Expires=300", f"X-Amz-Expires={expires}")
    message = reject(request._replace(query=query), IncompleteSignatureException)
    assert message == (f"X-Amz-Expires must be a whole number of seconds from 0 to 604800, got '{expires}'.")


def test_presigned_query_auth_with_empty_parameters_names_every_missing_one() -> None:
    message = reject(unsigned(query="X-Amz-Algorithm"), IncompleteSignatureException)
    assert message == (
        "AWS query-string parameters must include 'X-Amz-Algorithm'. "
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "AWS query-string parameters must include 'X-Amz-Date'. "
        "Re-examine the query-string parameters."
    )


def test_presigned_query_auth_names_the_one_missing_parameter() -> None:
    query = "X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d"
    message = reject(unsigned(query=query), IncompleteSignatureException)
    assert message == (
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters."
    )


# --- credentials files -----------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "credentials") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_line_format_gives_one_key_a_line_ignoring_comments_and_blanks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# operator-managed keys\n\nTKFIRST:secret/one+1\n   \n  TKSECOND : secret-two  \n",
    )
    store = CredentialStore.load(path)
    assert len(store) == 2
    assert store.secret_for("TKFIRST") == "secret/one+1"
    assert store.secret_for("TKSECOND") == "secret-two"
    assert store.secret_for("TKTHIRD") is None


def test_the_line_format_accepts_crlf_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(b"\xef\xbb\xbfTKFIRST:one\r\nTKSECOND:two\r\n")
    assert CredentialStore.load(path).secret_for("TKSECOND") == "two"


def test_the_aws_shared_credentials_format_reads_every_section_with_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# ~/.aws/credentials\n"
        "[default]\n"
        "aws_access_key_id = TKDEFAULT\n"
        "aws_secret_access_key = secret/default\n"
        "aws_session_token = ignored\n"
        "\n"
        "[profile ci]\n"
        "; a comment\n"
        "AWS_ACCESS_KEY_ID=TKCI\n"
        "AWS_SECRET_ACCESS_KEY=secret=ci\n"
        "[settings-only]\n"
        "region = eu-west-1\n",
    )
    store = CredentialStore.load(path)
    assert len(store) == 2
    assert store.secret_for("TKDEFAULT") == "secret/default"
    assert store.secret_for("TKCI") == "secret=ci"


def test_a_loaded_store_verifies_requests(tmp_path: Path) -> None:
    store = CredentialStore.load(write(tmp_path, f"{KEY_ID}:{SECRET}\n"))
    assert check(sign(), store=store) == KEY_ID


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("", "no credentials found"),
        ("# only a comment\n\n", "no credentials found"),
        ("TKFIRST:one\nTKSECOND\n", "line 2: expected ACCESS_KEY_ID:SECRET"),
        ("TKFIRST:\n", "line 1: secret access key must be printable ASCII without spaces"),
        ("TK FIRST:one\n", "line 1: access key id must be 1-128 of A-Z a-z 0-9 . _ -"),
        ("TKFIRST:has space\n", "line 1: secret access key must be printable ASCII without spaces"),
        (
            "TKFIRST:one\n#\nTKFIRST:two\n",
            "line 3: access key id 'TKFIRST' already given on line 1",
        ),
        ("[default]\naws_access_key_id = TKA\n", "section [default] has no aws_secret_access_key"),
        ("[default]\naws_secret_access_key = s\n", "section [default] has no aws_access_key_id"),
        ("[default\naws_access_key_id = TKA\n", "line 1: expected a section header like [default]"),
        ("[a]\n[a]\n", "line 2: section [a] appears twice"),
        ("[a]\njust words\n", "line 2: expected 'key = value'"),
        ("[a]\nregion = x\n", "no credentials found"),
    ],
)
def test_a_malformed_credentials_file_is_refused_with_its_cause(
    tmp_path: Path, text: str, cause: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CredentialsFileError) as raised:
        CredentialStore.load(path)
    assert str(raised.value) == f"read credentials {path}: {cause}"


def test_a_credentials_file_error_never_quotes_a_secret(tmp_path: Path) -> None:
    path = write(tmp_path, "TKFIRST:topsecret value\n")
    with pytest.raises(CredentialsFileError) as raised:
        CredentialStore.load(path)
    assert "topsecret" not in str(raised.value)


def test_a_missing_credentials_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(CredentialsFileError) as raised:
        CredentialStore.load(path)
    assert str(raised.value) == f"read credentials {path}: No such file or directory"


def test_a_credentials_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(b"TKFIRST:\xff\xfe\n")
    with pytest.raises(CredentialsFileError, match=r"^read credentials .*: not UTF-8 text"):
        CredentialStore.load(path)


def test_a_store_refuses_the_same_key_id_twice() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        CredentialStore([Credentials("TKA", "one"), Credentials("TKA", "two")])


def test_credentials_and_stores_do_not_show_secrets_in_their_repr() -> None:
    assert SECRET not in repr(Credentials(KEY_ID, SECRET))
    assert SECRET not in repr(STORE)


# --- generated credentials -------------------------------------------------------


def test_generated_credentials_look_like_aws_keys() -> None:
    credentials = generate_credentials()
    assert len(credentials.access_key_id) == 20
    assert credentials.access_key_id.startswith("TK")
    assert credentials.access_key_id.isupper() and credentials.access_key_id.isalnum()
    assert len(credentials.secret_access_key) == 40


def test_generated_credentials_are_different_every_time() -> None:
    assert len({generate_credentials() for _ in range(50)}) == 50


def test_generated_credentials_survive_a_credentials_file_and_sign(tmp_path: Path) -> None:
    credentials = generate_credentials()
    line = f"{credentials.access_key_id}:{credentials.secret_access_key}\n"
    store = CredentialStore.load(write(tmp_path, line))
    request = sign(key_id=credentials.access_key_id, secret=credentials.secret_access_key)
    assert check(request, store=store) == credentials.access_key_id
