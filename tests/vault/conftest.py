"""Fixtures for vault tests: moto's standalone S3 server on 127.0.0.1, with authentication on.

The server is a separate process (one per test session), started on a free
port with credential checking enabled: the first few requests (creating an
IAM user, its policy and access key, and the bucket) go unauthenticated,
every later one must be signed with that user's key, so wrong credentials
are refused as S3 refuses them.

Moto checks ``If-None-Match: *`` and then stores the object in two steps
without a lock, where S3 does both atomically; the server therefore handles
one request at a time (connections stay concurrent), so that races between
our writers meet an atomic store as they would on S3.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from tablekeeper.vault.s3 import S3Store

HOST = "127.0.0.1"
REGION = "us-east-1"
BUCKET = "vault-tests"
START_TIMEOUT = 30.0

# Unauthenticated setup requests: for the user "vault" create_user, put_user_policy and
# create_access_key; for the user "nobody" (no permissions) create_user and create_access_key;
# then create_bucket.
SETUP_REQUESTS = 6

_SERVER = f"""
import sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)

app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()

def serial(environ, start_response):
    with one_at_a_time:
        return list(app(environ, start_response))

server = make_server({HOST!r}, 0, serial, threaded=True, request_handler=MotoRequestHandler)
print(server.server_port, flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    # credentials of a user the store knows but who may do nothing
    powerless_key: tuple[str, str]

    def store(self, prefix: str | None = None, **options: object) -> S3Store:
        """A store on a fresh prefix of the test bucket (unless one is given)."""
        settings: dict[str, object] = {
            "endpoint_url": self.endpoint,
            "region": REGION,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            **options,
        }
        return S3Store(self.bucket, prefix if prefix is not None else f"t-{uuid.uuid4().hex[:12]}",
                       **settings)  # type: ignore[arg-type]


def _client(service: str, endpoint: str, key: str = "setup", secret: str = "setup"):  # type: ignore[no-untyped-def]
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
        aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_REQUESTS), PYTHONUNBUFFERED="1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert process.stdout is not None
        ready = selectors.DefaultSelector()
        ready.register(process.stdout, selectors.EVENT_READ)
        line = process.stdout.readline().strip() if ready.select(START_TIMEOUT) else ""
        if not line.isdigit():
            pytest.fail(f"moto server did not start (exit code {process.poll()})")
        endpoint = f"http://{HOST}:{line}"
        iam = _client("iam", endpoint)
        iam.create_user(UserName="vault")
        iam.put_user_policy(
            UserName="vault", PolicyName="s3",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        )
        key = iam.create_access_key(UserName="vault")["AccessKey"]
        iam.create_user(UserName="nobody")
        powerless = iam.create_access_key(UserName="nobody")["AccessKey"]
        _client("s3", endpoint).create_bucket(Bucket=BUCKET)
        yield MotoS3(endpoint, BUCKET, key["AccessKeyId"], key["SecretAccessKey"],
                     (powerless["AccessKeyId"], powerless["SecretAccessKey"]))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
