"""A stand-in for AWS (IAM, STS, Secrets Manager) on loopback: moto in server mode, for the demo and the tests.

A cloud API cannot run here, and moto is the standard stand-in. It is started with IAM
authentication on, so every request is signed and checked like AWS does: a wrong secret, an
unknown or deleted key is refused. moto does not refuse an *inactive* key (AWS does); the
stand-in adds that one rule (AccessKeyStatus), so a deactivated key is refused here as in AWS,
and the connectors' proofs ("the old key is refused") are real proofs against the stand-in.

start() runs it in a thread of the calling process and returns the endpoint and an administrator
key (an IAM user with a "*" policy, made while authentication was still off). moto is a
development dependency: only `make run` (demo mode) and the tests import this module.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

import boto3
import requests
from moto.iam import access_control
from moto.server import ThreadedMotoServer

ADMIN_USER = "steward-admin"
ADMIN_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
REGION = "us-east-1"

_original_key_init = access_control.IAMUserAccessKey.__init__


def _refuse_inactive_keys(self, account_id, partition, access_key_id, headers):
    """AWS refuses a request signed by an inactive access key (InvalidClientTokenId); moto would accept it."""
    _original_key_init(self, account_id, partition, access_key_id, headers)
    for user in self.backend.list_users("/", None, None):
        for key in user.access_keys:
            if key.access_key_id == access_key_id and key.status != "Active":
                raise access_control.CreateAccessKeyFailure(reason="InvalidId")


@dataclass
class AWSStandIn:
    endpoint: str
    admin_key_id: str
    admin_secret: str
    server: ThreadedMotoServer

    def client(self, service: str, *, key_id: str | None = None, secret: str | None = None):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=key_id or self.admin_key_id,
                            aws_secret_access_key=secret or self.admin_secret)

    def stop(self) -> None:
        requests.post(f"{self.endpoint}/moto-api/reset-auth", data=b"inf", timeout=5)
        self.server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(port: int | None = None) -> AWSStandIn:
    """moto on 127.0.0.1 (a free port unless one is given), authenticating every request, with an admin key."""
    access_control.IAMUserAccessKey.__init__ = _refuse_inactive_keys
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # Authentication is off until reset-auth: the administrator is made first, then every request is checked.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=5)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bootstrap",
                       aws_secret_access_key="bootstrap")
    # moto's backends are per process: a second stand-in in the same process (the tests start the demo's
    # and their own) sees the first one's users, so each administrator has a name of its own.
    admin_user = f"{ADMIN_USER}-{port}"
    iam.create_user(UserName=admin_user)
    iam.put_user_policy(UserName=admin_user, PolicyName="administrator", PolicyDocument=ADMIN_POLICY)
    key = iam.create_access_key(UserName=admin_user)["AccessKey"]
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=5)
    return AWSStandIn(endpoint=endpoint, admin_key_id=key["AccessKeyId"], admin_secret=key["SecretAccessKey"],
                      server=server)
