"""AWS Signature Version 4 verification for the engine's HTTP endpoint.

With ``--auth sigv4`` the HTTP layer calls :func:`verify` once per request,
before decoding the body, and maps what it raises to the error response.  The
module is pure: no clock (``now`` is an argument), no I/O outside
:meth:`CredentialStore.load`.

What ``verify`` checks, in the order DynamoDB does, and what it raises
(``tablekeeper.engine.errors``, DynamoDB's own wording):

1. An ``Authorization: AWS4-...`` header or an ``X-Amz-Algorithm`` query
   parameter -- MissingAuthenticationTokenException when neither,
   InvalidSignatureException when both.
2. Every signature part present (Credential, SignedHeaders, Signature, a
   date) -- IncompleteSignatureException naming each one missing.
3. The date (``X-Amz-Date``, else ``Date``) in ISO-8601 basic format
   (IncompleteSignatureException) and within 15 minutes of ``now``; a
   presigned request is good from 15 minutes before its date until
   ``X-Amz-Expires`` seconds after it (InvalidSignatureException).
4. ``host`` among the signed headers, algorithm ``AWS4-HMAC-SHA256``, and a
   credential scope ``KEYID/YYYYMMDD/REGION/dynamodb/aws4_request`` dated as
   the request is.  Any region is accepted; ``dynamodb`` is the service for
   both the DynamoDB and the DynamoDB Streams clients.
5. The access key known to the store -- UnrecognizedClientException.
6. The signature -- InvalidSignatureException.

The canonical request follows AWS's "Create a canonical request for Signature
Version 4":

- *path*: the raw request path as sent (still percent-encoded, without the
  query); empty and dot segments removed, then percent-encoded once more
  (every service but S3 encodes twice).
- *query*: names and values decoded as a form is (``%XX`` escapes, and ``+``
  for a space: botocore signs a space as ``%20`` but sends it as ``+``),
  re-encoded leaving only ``A-Z a-z 0-9 - _ . ~`` bare, sorted by name then
  value; ``X-Amz-Signature`` left out.
- *headers*: the signed headers in the order listed, names lower-cased,
  values trimmed with inner runs of whitespace collapsed to one space.  A
  repeated header must reach ``verify`` joined with ``,``.  Header names may
  come in any case; values as decoded from the wire with Latin-1 (so every
  byte round-trips).
- *payload*: the SHA-256 of the body.  An ``X-Amz-Content-Sha256`` header is
  signed like any other header, but the payload hash is always the body's
  own, so a header naming anything else (``UNSIGNED-PAYLOAD`` included)
  fails as a wrong signature: the body is always covered.

A session token (``X-Amz-Security-Token``) is covered by the signature when
signed; its value is not checked otherwise.

Credentials file
----------------
:meth:`CredentialStore.load` reads one of two formats, chosen by content: a
file whose first line that is not blank or a comment starts with ``[`` is the
AWS shared-credentials INI format, anything else the line format.

Line format -- one key a line, as a Kubernetes Secret key mounts it::

    # comments and blank lines are ignored
    TKAAAAAAAAAAAAAAAAAA:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

AWS shared-credentials format -- every section holding both keys gives one
credential; other keys (``aws_session_token``, ``region``...) and sections
with neither are ignored; ``#`` and ``;`` start comment lines::

    [default]
    aws_access_key_id = TKAAAAAAAAAAAAAAAAAA
    aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

Access key ids are 1-128 of ``A-Z a-z 0-9 . _ -``; secrets are printable
ASCII without whitespace.  A key id may appear once.  A file with no
credentials is an error.  Errors (:class:`CredentialsFileError`) read
``read credentials FILE: cause`` and never quote a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote_plus

from tablekeeper.engine.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = [
    "ALGORITHM",
    "SERVICE",
    "CredentialStore",
    "Credentials",
    "CredentialsFileError",
    "generate_credentials",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "dynamodb"
TERMINATOR = "aws4_request"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600  # seconds; SigV4 signing keys last a week

_STAMP = "%Y%m%dT%H%M%SZ"
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_QUERY_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)


# --- credentials ------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """One access key: the id clients send, the secret they sign with."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


class CredentialsFileError(Exception):
    """A credentials file could not be read, or is not in a known format."""


_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SECRET = re.compile(r"[!-~]+")  # printable ASCII, no whitespace


class CredentialStore:
    """An immutable mapping of access key id to secret."""

    __slots__ = ("_secrets",)

    def __init__(self, credentials: Iterable[Credentials] = ()) -> None:
        secrets_by_id: dict[str, str] = {}
        for credential in credentials:
            if credential.access_key_id in secrets_by_id:
                raise ValueError(f"access key id {credential.access_key_id!r} appears twice")
            secrets_by_id[credential.access_key_id] = credential.secret_access_key
        self._secrets = secrets_by_id

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CredentialStore:
        """Read a credentials file in either format (see the module docstring).

        Raises CredentialsFileError when the file cannot be read, is not
        UTF-8, is malformed, or holds no credentials.
        """
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CredentialsFileError(f"read credentials {os.fspath(path)}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CredentialsFileError(
                f"read credentials {os.fspath(path)}: not UTF-8 text (byte {exc.start})"
            ) from exc
        try:
            return cls(_parse_credentials(text))
        except ValueError as exc:
            raise CredentialsFileError(f"read credentials {os.fspath(path)}: {exc}") from exc

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret for ``access_key_id``, or None when the key is unknown."""
        return self._secrets.get(access_key_id)

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, access_key_id: object) -> bool:
        return access_key_id in self._secrets

    def __repr__(self) -> str:
        return f"CredentialStore({len(self._secrets)} keys)"


def generate_credentials() -> Credentials:
    """A fresh random access key shaped like AWS's: ``TK`` + 18, and 40 characters."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    key_id = "TK" + "".join(secrets.choice(alphabet) for _ in range(18))
    secret = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
    return Credentials(key_id, secret)


def _parse_credentials(text: str) -> list[Credentials]:
    """Parse either file format; ValueError names the offending line."""
    lines = list(_content_lines(text))
    if not lines:
        raise ValueError("no credentials found")
    entries = _parse_ini(lines) if lines[0][1].startswith("[") else _parse_lines(lines)
    if not entries:
        raise ValueError("no credentials found")
    seen: dict[str, int] = {}
    for lineno, credential in entries:
        first = seen.setdefault(credential.access_key_id, lineno)
        if first != lineno:
            raise ValueError(
                f"line {lineno}: access key id {credential.access_key_id!r} already given on line {first}"
            )
    return [credential for _, credential in entries]


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) for every line not blank or a comment."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and line[0] not in "#;":
            yield lineno, line


def _parse_lines(lines: list[tuple[int, str]]) -> list[tuple[int, Credentials]]:
    entries = []
    for lineno, line in lines:
        key_id, sep, secret = line.partition(":")
        if not sep:
            raise ValueError(f"line {lineno}: expected ACCESS_KEY_ID:SECRET")
        entries.append((lineno, _credentials(key_id.strip(), secret.strip(), lineno)))
    return entries


def _parse_ini(lines: list[tuple[int, str]]) -> list[tuple[int, Credentials]]:
    sections: dict[str, dict[str, tuple[str, int]]] = {}
    section: dict[str, tuple[str, int]] = {}
    for lineno, line in lines:
        if line.startswith("["):
            name = line[1:-1].strip()
            if not line.endswith("]") or not name:
                raise ValueError(f"line {lineno}: expected a section header like [default]")
            if name in sections:
                raise ValueError(f"line {lineno}: section [{name}] appears twice")
            section = sections[name] = {}
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"line {lineno}: expected 'key = value'")
        section[key.strip().lower()] = (value.strip(), lineno)
    entries = []
    for name, values in sections.items():
        key_id = values.get("aws_access_key_id")
        secret = values.get("aws_secret_access_key")
        if key_id is None and secret is None:
            continue
        if key_id is None or secret is None:
            missing = "aws_access_key_id" if key_id is None else "aws_secret_access_key"
            raise ValueError(f"section [{name}] has no {missing}")
        entries.append((key_id[1], _credentials(key_id[0], secret[0], key_id[1], secret[1])))
    return entries


def _credentials(key_id: str, secret: str, lineno: int, secret_lineno: int = 0) -> Credentials:
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"line {lineno}: access key id must be 1-128 of A-Z a-z 0-9 . _ -")
    if not _SECRET.fullmatch(secret):
        raise ValueError(
            f"line {secret_lineno or lineno}: secret access key must be printable ASCII without spaces"
        )
    return Credentials(key_id, secret)


# --- verification ----------------------------------------------------------------


class _Signed(NamedTuple):
    """The parts of a signature, whether from the Authorization header or the query."""

    algorithm: str
    credential: str
    signed_headers: str
    signature: str
    date: str
    date_is_http_date: bool  # from the Date header: RFC 1123 allowed too
    presigned: bool  # from the query string
    expires: str  # X-Amz-Expires of a presigned request; "" when not given


def verify(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    store: CredentialStore,
    now: datetime,
) -> str:
    """Verify one request's SigV4 signature; return the access key id that signed it.

    ``path`` and ``query`` are the raw request target split at ``?``, still
    percent-encoded; ``headers`` maps names (any case) to values; ``now`` is
    an aware datetime (a naive one is taken as UTC).  Raises the errors named
    in the module docstring.
    """
    headers = {name.lower(): value for name, value in headers.items()}
    params = _parse_query(query) if query else []
    signed = _read_signature(headers, params)
    signed_at, stamp = _parse_date(signed.date, signed.date_is_http_date)
    _check_fresh(signed_at, stamp, signed.expires, now)
    names = signed.signed_headers.lower()
    name_list = names.split(";")
    if "host" not in name_list:
        raise InvalidSignatureException("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if signed.algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{signed.algorithm}' (only {ALGORITHM} for now). "
        )
    key_id, day, region, service = _read_scope(signed.credential, stamp)
    secret = store.secret_for(key_id)
    if secret is None:
        raise UnrecognizedClientException()

    canonical_request = "\n".join(
        (
            method.upper(),
            _canonical_path(path),
            _canonical_query(params, signed.presigned),
            _canonical_headers(name_list, headers),
            names,
            hashlib.sha256(body).hexdigest(),
        )
    )
    request_hash = hashlib.sha256(_wire_bytes(canonical_request)).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{stamp}\n{day}/{region}/{service}/{TERMINATOR}\n{request_hash}"
    key = _signing_key(secret, day, region, service)
    expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    provided = signed.signature
    if not (provided.isascii() and hmac.compare_digest(expected, provided)):
        raise InvalidSignatureException(_SIGNATURE_MISMATCH)
    return key_id


@lru_cache(maxsize=128)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """The derived key for one (secret, date, region, service): four HMACs, cached."""
    key = hmac.digest(f"AWS4{secret}".encode(), day.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, TERMINATOR.encode(), "sha256")


def _read_signature(headers: dict[str, str], params: list[tuple[str, str]]) -> _Signed:
    authorization = headers.get("authorization")
    query_auth = any(name == "X-Amz-Algorithm" for name, _ in params)
    if authorization is not None and query_auth:
        raise InvalidSignatureException(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
        )
    if authorization is not None and authorization.strip().startswith("AWS4-"):
        return _read_authorization_header(authorization, headers)
    if authorization is None and query_auth:
        return _read_query_auth(params)
    raise MissingAuthenticationTokenException()


def _read_authorization_header(authorization: str, headers: dict[str, str]) -> _Signed:
    algorithm, _, rest = authorization.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.replace(",", " ").split():
        name, sep, value = part.partition("=")
        if not sep:
            raise IncompleteSignatureException(
                f"'{name}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{authorization}'."
            )
        fields[name] = value
    credential = fields.get("Credential")
    signature = fields.get("Signature")
    signed_headers = fields.get("SignedHeaders")  # present but empty fails the Host check
    amz_date = headers.get("x-amz-date")
    date = amz_date if amz_date is not None else headers.get("date")
    if not (credential and signature and signed_headers is not None and date):
        problems = [
            f"Authorization header requires '{name}' parameter. "
            for name, present in (
                ("Credential", bool(credential)),
                ("Signature", bool(signature)),
                ("SignedHeaders", signed_headers is not None),
            )
            if not present
        ]
        if not date:
            problems.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
            )
        raise IncompleteSignatureException("".join(problems) + f"Authorization={authorization}")
    return _Signed(algorithm, credential, signed_headers, signature, date, amz_date is None, False, "")


def _read_query_auth(params: list[tuple[str, str]]) -> _Signed:
    values = dict(params)
    problems = [
        f"AWS query-string parameters must include '{name}'. "
        for name in _QUERY_AUTH_PARAMS
        if not values.get(name)
    ]
    if problems:
        raise IncompleteSignatureException("".join(problems) + "Re-examine the query-string parameters.")
    return _Signed(
        algorithm=values["X-Amz-Algorithm"],
        credential=values["X-Amz-Credential"],
        signed_headers=values["X-Amz-SignedHeaders"],
        signature=values["X-Amz-Signature"],
        date=values["X-Amz-Date"],
        date_is_http_date=False,
        presigned=True,
        expires=values.get("X-Amz-Expires", ""),
    )


def _parse_date(value: str, http_date_allowed: bool) -> tuple[datetime, str]:
    """The signing time and its ISO-8601 basic form, as the string to sign has it."""
    parsed = _parse_stamp(value)
    if parsed is not None:
        return parsed, value
    if http_date_allowed:  # botocore sends an RFC 1123 Date when the caller set one
        try:
            parsed = parsedate_to_datetime(value)
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
            return parsed, _stamp(parsed)
        except (TypeError, ValueError, OverflowError):
            pass
    raise IncompleteSignatureException(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _parse_stamp(value: str) -> datetime | None:
    """Parse ``YYYYMMDD'T'HHMMSS'Z'``; None when it is not that."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime.fromisoformat(value)  # 3.11 reads the basic format, in UTC
    except ValueError:
        return None


def _check_fresh(signed_at: datetime, stamp: str, expires: str, now: datetime) -> None:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if expires:  # presigned: good until X-Amz-Expires seconds after signing
        if not (expires.isascii() and expires.isdigit()) or int(expires) > MAX_PRESIGNED_EXPIRES:
            raise IncompleteSignatureException(
                f"X-Amz-Expires must be a whole number of seconds from 0 to "
                f"{MAX_PRESIGNED_EXPIRES}, got '{expires}'."
            )
        window, window_text = timedelta(seconds=int(expires)), f"{expires} sec."
    else:
        window, window_text = MAX_SKEW, "15 min."
    if signed_at < now - window:
        raise InvalidSignatureException(
            f"Signature expired: {stamp} is now earlier than {_stamp(now - window)} "
            f"({_stamp(now)} - {window_text})"
        )
    if signed_at > now + MAX_SKEW:
        raise InvalidSignatureException(
            f"Signature not yet current: {stamp} is still later than {_stamp(now + MAX_SKEW)} "
            f"({_stamp(now)} + 15 min.)"
        )


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def _read_scope(credential: str, stamp: str) -> tuple[str, str, str, str]:
    """(key id, date, region, service) from ``KEYID/YYYYMMDD/REGION/SERVICE/aws4_request``."""
    parts = credential.rstrip("/").split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    key_id, day, region, service, terminator = parts
    problems = []
    if not region:
        problems.append(f"Credential should be scoped to a valid region, not '{region}'.")
    if service != SERVICE:
        problems.append(f"Credential should be scoped to correct service: '{SERVICE}'.")
    if terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )
    if day != stamp[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{day}' != '{stamp[:8]}', from '{stamp}'."
        )
    if problems:
        raise InvalidSignatureException(" ".join(problems))
    return key_id, day, region, service


# --- the canonical request -------------------------------------------------------


def _parse_query(query: str) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs, in order; ``+`` is a space, as in a form."""
    pairs = []
    for piece in query.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def _canonical_query(params: list[tuple[str, str]], presigned: bool) -> str:
    encoded = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in params
        if not (presigned and name == "X-Amz-Signature")
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def _canonical_path(path: str) -> str:
    if path == "/":
        return path
    segments = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return quote("/" + "/".join(segments) + trailing, safe="/~")


def _wire_bytes(canonical_request: str) -> bytes:
    """The bytes the client hashed: header values were decoded from Latin-1.

    Only header values can be non-ASCII here.  Latin-1 gives back the bytes
    as sent (a client signs UTF-8 text as its UTF-8 bytes); text that cannot
    have come from Latin-1 is taken as meant, in UTF-8.
    """
    try:
        return canonical_request.encode("latin-1")
    except UnicodeEncodeError:
        return canonical_request.encode("utf-8", "surrogatepass")


def _canonical_headers(names: list[str], headers: dict[str, str]) -> str:
    """One ``name:value`` line per signed header, each ending in a newline."""
    return "".join([f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names])
