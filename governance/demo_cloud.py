"""The demo's AWS and CI credentials, which rotate through their connectors (`make run`, demo mode only).

`make run` starts the AWS stand-in (moto in server mode, governance.demo_aws_server) and the CI
API stand-in (governance.demo_ci_server) on free loopback ports, in its own process, and then
calls seed_demo_cloud: it registers (once, through the inventory services, audited as the system
task "seed_demo_cloud") an AWS account with an IAM target, a Secrets Manager store, a GitHub
Actions store and a GitLab CI store, an IAM access key kept in OpenBao KV and delivered to a
GitHub repository secret, a GitHub environment secret and a GitLab variable, a Secrets Manager
secret, and a secret stored in each CI store; then, every start (the stand-ins and the OpenBao dev
server keep everything in memory), points the stores at this run's ports, creates the IAM user and
its key, the Secrets Manager secret and the CI variables, records their versions and pushes the
key to its deliveries. A demo user then presses Rotate and sees a new key proven and delivered.

Without OpenBao the IAM key has nowhere to live: it is skipped with the reason, the rest still works.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass

from django.db import transaction

from governance.audit import Actor
from governance.choices import CredentialKind, SecretStoreKind
from governance.connectors import registry
from governance.connectors.base import ConnectorError, new_secret_value
from governance.connectors.ci_common import CILocation
from governance.models import Credential, Person, SecretStore, System, Team
from governance.models.deliveries import CredentialDelivery
from governance.services import deliveries, inventory
from governance.services.lifecycle import connector_target_set, credential_record_change, credentials_reconcile

TASK_ID = "seed_demo_cloud"
KV_STORE = "openbao-prod"
AWS_SYSTEM, ASM_STORE, GITHUB_STORE, GITLAB_STORE = "aws-prod-account", "aws-secrets-manager", "github-actions", \
    "gitlab-ci"
AWS_KEY_ENV, AWS_SECRET_ENV = "STEWARD_DEMO_AWS_ACCESS_KEY_ID", "STEWARD_DEMO_AWS_SECRET_ACCESS_KEY"
GITHUB_TOKEN_ENV, GITLAB_TOKEN_ENV = "STEWARD_DEMO_GITHUB_TOKEN", "STEWARD_DEMO_GITLAB_TOKEN"
OWNER = "demo-owner"
REPOSITORY, PROJECT = "acme/payments-api", "acme/platform/infra"
DEPLOY_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::acme-releases/*"}]})


@dataclass(frozen=True)
class DemoCredential:
    name: str
    kind: str
    store: str
    path: str
    identifier: str
    system: str = AWS_SYSTEM


IAM_KEY = DemoCredential("payments-api deploy key (AWS)", CredentialKind.API_KEY, KV_STORE, "aws/ci-deployer",
                         "ci-deployer")
ASM_SECRET = DemoCredential("reporting API token (Secrets Manager)", CredentialKind.API_KEY, ASM_STORE,
                            "acme/reporting/api-token", "reporting-api-token")
CI_SECRETS = (
    DemoCredential("release signing passphrase (GitHub)", CredentialKind.PASSWORD, GITHUB_STORE,
                   f"{REPOSITORY}/RELEASE_SIGNING_PASSPHRASE", "release-signing-passphrase"),
    DemoCredential("infra webhook token (GitLab)", CredentialKind.ACCESS_TOKEN, GITLAB_STORE,
                   f"{PROJECT}/WEBHOOK_TOKEN", "infra-webhook-token"),
)
# (store, repository, environment, variable, field of the stored key)
IAM_DELIVERIES = (
    (GITHUB_STORE, REPOSITORY, "", "AWS_ACCESS_KEY_ID", "access_key_id"),
    (GITHUB_STORE, REPOSITORY, "production", "AWS_SECRET_ACCESS_KEY", "secret_access_key"),
    (GITLAB_STORE, PROJECT, "", "AWS_SECRET_ACCESS_KEY", "secret_access_key"),
)


def _aws_settings(endpoint: str) -> dict:
    return {"region": "us-east-1", "endpoint_url": endpoint, "timeout": 5, "propagation_seconds": 0,
            "access_key_id_env_var": AWS_KEY_ENV, "secret_access_key_env_var": AWS_SECRET_ENV}


def _store(actor: Actor, name: str, data: dict) -> SecretStore:
    store = SecretStore.objects.filter(name=name).first()
    if store is None:
        return inventory.secret_store_create(actor=actor, data={"name": name, **data})
    return inventory.secret_store_update(actor=actor, store=store, data=data)


def _inventory(actor: Actor, *, aws_endpoint: str, ci_address: str) -> dict[str, SecretStore]:
    """The demo's cloud and CI stores, AWS account, credentials and deliveries; the stores at this run's ports."""
    owner = Person.objects.get(username=OWNER)
    team = Team.objects.filter(group__in=owner.groups.all()).order_by("pk").first()
    stores = {
        ASM_STORE: _store(actor, ASM_STORE, {
            "kind": SecretStoreKind.AWS_SECRETS_MANAGER, "address": aws_endpoint, "settings": _aws_settings(""),
            "description": "Demo: AWS Secrets Manager (moto on loopback)."}),
        GITHUB_STORE: _store(actor, GITHUB_STORE, {
            "kind": SecretStoreKind.GITHUB_ACTIONS, "address": ci_address, "credential_env_var": GITHUB_TOKEN_ENV,
            "settings": {"timeout": 5}, "description": "Demo: GitHub Actions secrets (the CI stand-in)."}),
        GITLAB_STORE: _store(actor, GITLAB_STORE, {
            "kind": SecretStoreKind.GITLAB_CI, "address": ci_address, "credential_env_var": GITLAB_TOKEN_ENV,
            "settings": {"timeout": 5}, "description": "Demo: GitLab CI/CD variables (the CI stand-in)."}),
    }
    kv = SecretStore.objects.filter(name=KV_STORE, kind=SecretStoreKind.OPENBAO_KV).first()
    if kv is not None:
        stores[KV_STORE] = kv
    system = System.objects.filter(name=AWS_SYSTEM).first()
    if system is None:
        system = inventory.system_create(actor=actor, data={
            "name": AWS_SYSTEM, "description": "Demo: the production AWS account (moto on loopback).",
            "environment": "prod", "criticality": "high", "owner": owner, "team": team})
    connector_target_set(actor=actor, system=system, kind="aws_iam", settings=_aws_settings(aws_endpoint))
    for spec in (IAM_KEY, ASM_SECRET, *CI_SECRETS):
        if spec.store in stores and not Credential.objects.filter(system=system, identifier=spec.identifier).exists():
            inventory.credential_create(actor=actor, data={
                "name": spec.name, "kind": spec.kind, "system": system, "identifier": spec.identifier,
                "store": stores[spec.store], "store_path": spec.path, "rotation_max_age_days": 90,
                "owner": owner, "team": team, "notes": "A demo credential, rotated through its connector."})
    key = Credential.objects.filter(system=system, identifier=IAM_KEY.identifier).first()
    if key is not None:
        for store, repository, environment, variable, field in IAM_DELIVERIES:
            if not CredentialDelivery.objects.filter(credential=key, store=stores[store], repository=repository,
                                                     environment=environment, variable_name=variable).exists():
                deliveries.delivery_add(actor=actor, credential=key, store=stores[store], repository=repository,
                                        environment=environment, variable_name=variable, value_key=field)
    return stores


def _record(actor: Actor, credential: Credential, values: dict, summary: str) -> None:
    with transaction.atomic():
        credential_record_change(actor=actor, credential=credential, values=values, action="credential.seed",
                                 summary=summary)


def _seed_iam(actor: Actor, aws, credential: Credential) -> str:
    """The IAM user with its policy and a first key, written where the credential points."""
    iam = aws.client("iam")
    if not any(u["UserName"] == IAM_KEY.identifier for u in iam.list_users()["Users"]):
        iam.create_user(UserName=IAM_KEY.identifier)
        iam.put_user_policy(UserName=IAM_KEY.identifier, PolicyName="deploy-releases", PolicyDocument=DEPLOY_POLICY)
    for key in iam.list_access_keys(UserName=IAM_KEY.identifier)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=IAM_KEY.identifier, AccessKeyId=key["AccessKeyId"])
    created = iam.create_access_key(UserName=IAM_KEY.identifier)["AccessKey"]
    kv = registry.kv_connector(credential.store)
    path = kv.path_of(credential.store_path)
    version, _ = kv.write_value(path, {"access_key_id": created["AccessKeyId"],
                                       "secret_access_key": created["SecretAccessKey"]}, cas=None)
    _record(actor, credential, {"store_version": str(version), "fingerprint": created["AccessKeyId"]},
            f"{credential}: demo IAM key {created['AccessKeyId']} in OpenBao version {version}")
    report = deliveries.deliveries_push(actor=actor, credential=credential, version=str(version))
    pushed = len(report.proof)
    return f"IAM key of {IAM_KEY.identifier} delivered to {pushed} of {pushed + len(report.failures)} CI variables"


def _seed_asm(actor: Actor, aws, credential: Credential) -> str:
    client = aws.client("secretsmanager")
    value = json.dumps({"value": new_secret_value()})
    try:
        version = client.put_secret_value(SecretId=credential.store_path, SecretString=value)["VersionId"]
    except client.exceptions.ResourceNotFoundException:
        version = client.create_secret(Name=credential.store_path, SecretString=value)["VersionId"]
    _record(actor, credential, {"store_version": version}, f"{credential}: demo secret version {version}")
    return f"Secrets Manager secret {credential.store_path}"


def _seed_ci(actor: Actor, ci, credential: Credential) -> str:
    location = CILocation.from_path(credential.store_path)
    if credential.store.kind == SecretStoreKind.GITHUB_ACTIONS:
        ci.add_repository(location.repository, "production")
    else:
        ci.add_project(location.repository)
    state, _ = registry.ci_connector(credential.store).push(location, new_secret_value())
    _record(actor, credential, {"store_version": state.version}, f"{credential}: demo CI secret {location.label}")
    return location.label


def seed_demo_cloud(*, aws, ci, now: dt.datetime) -> dict:
    """Register and seed the demo's AWS and CI credentials against this run's stand-ins; say what was skipped."""
    actor = Actor.system(task_id=TASK_ID, label=TASK_ID)
    if not Person.objects.filter(username=OWNER).exists():
        return {"seeded": [], "skipped": [f"No {OWNER}: seed the demo estate first."]}
    os.environ[AWS_KEY_ENV], os.environ[AWS_SECRET_ENV] = aws.admin_key_id, aws.admin_secret
    os.environ[GITHUB_TOKEN_ENV], os.environ[GITLAB_TOKEN_ENV] = ci.github_token, ci.gitlab_token
    ci.add_repository(REPOSITORY, "production")
    ci.add_project(PROJECT)
    stores = _inventory(actor, aws_endpoint=aws.endpoint, ci_address=ci.address)
    registry.clear_cache()
    system = System.objects.get(name=AWS_SYSTEM)
    seeded, skipped = [], []
    steps = [(IAM_KEY, _seed_iam, aws), (ASM_SECRET, _seed_asm, aws), *((spec, _seed_ci, ci) for spec in CI_SECRETS)]
    for spec, seed, stand_in in steps:
        credential = Credential.objects.select_related("store").filter(system=system,
                                                                       identifier=spec.identifier).first()
        if credential is None:
            skipped.append(f"{spec.name}: its store {spec.store} is not registered.")
            continue
        try:
            seeded.append(seed(actor, stand_in, credential))
        except ConnectorError as error:
            skipped.append(f"{spec.name}: {error.reason}")
    ids = list(Credential.objects.filter(system=system).values_list("pk", flat=True))
    observed = credentials_reconcile(credential_ids=ids, now=now)
    return {"seeded": seeded, "skipped": skipped, "observed": observed, "stores": sorted(stores)}
