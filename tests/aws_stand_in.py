"""AWS for the tests: moto in server mode (moto.server.ThreadedMotoServer) on a free loopback port.

The server is governance.demo_aws_server's (the one `make run` starts): IAM authentication on, so
a wrong, deleted or inactive key is refused as AWS refuses it. One server per test session; each
test makes IAM users and secrets with unique names. Steward's administrator key is put in the
environment variables the settings below name.
"""

from __future__ import annotations

import os
import uuid

import pytest

from governance import demo_aws_server

ADMIN_KEY_ENV = "STEWARD_TEST_AWS_ACCESS_KEY_ID"
ADMIN_SECRET_ENV = "STEWARD_TEST_AWS_SECRET_ACCESS_KEY"
READ_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}'


@pytest.fixture(scope="session")
def aws():
    stand_in = demo_aws_server.start()
    os.environ[ADMIN_KEY_ENV] = stand_in.admin_key_id
    os.environ[ADMIN_SECRET_ENV] = stand_in.admin_secret
    yield stand_in
    stand_in.stop()
    os.environ.pop(ADMIN_KEY_ENV, None)
    os.environ.pop(ADMIN_SECRET_ENV, None)


def aws_settings(stand_in, **extra) -> dict:
    """Connector settings (a target's or a store's) reaching the stand-in with the administrator key."""
    return {"region": demo_aws_server.REGION, "endpoint_url": stand_in.endpoint, "timeout": 5,
            "propagation_seconds": 0, "access_key_id_env_var": ADMIN_KEY_ENV,
            "secret_access_key_env_var": ADMIN_SECRET_ENV, **extra}


def iam_user(stand_in, *, prefix: str = "app") -> tuple[str, dict]:
    """A new IAM user with a read policy and one access key: (user name, {access_key_id, secret_access_key})."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    iam = stand_in.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=READ_POLICY)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def signs_in(stand_in, key: dict) -> bool:
    """sts:GetCallerIdentity signed by the key: True when AWS (the stand-in) accepts it."""
    sts = stand_in.client("sts", key_id=key["access_key_id"], secret=key["secret_access_key"])
    try:
        sts.get_caller_identity()
        return True
    except sts.exceptions.ClientError:
        return False
