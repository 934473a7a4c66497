"""Delivering a credential's value to the CI variables that consume it, and taking it back.

A CredentialDelivery names a CI variable (GitHub Actions secret, GitLab CI/CD variable) that holds
one field of a credential's current value. Rotation pushes the new value to every delivery in the
same job, once the connector has proven the new value (services.rotation calls
deliveries_after_rotation); the value is read from the credential's store of record at the new
version, kept in memory only, and pushed through the CI connector, which proves it arrived. Each
push is recorded (DeliveryPush) with its proof or reason, and a failed push makes the rotation
fail with that reason: the credential's new version is recorded (it is the truth), the job is
failed, the owner is told and a finding opens. The kill switch and revocation delete the CI
variables (deliveries_withdraw): a CI job can no longer read a value that is being shut off.

Connectors talk to the network, so the pushes run outside any transaction; their records are
written afterwards in one short transaction with one audit event.
"""

from __future__ import annotations

import dataclasses
import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_append
from governance.choices import CI_STORE_KINDS, SecretStoreKind
from governance.connectors import registry
from governance.connectors.base import ConnectorError, CredentialRef, RotationResult, Unsupported
from governance.connectors.ci_common import VARIABLE_NAME, CILocation
from governance.models import Credential, SecretStore
from governance.models.deliveries import CredentialDelivery, DeliveryPush, DeliveryState, PushAction, PushOutcome
from governance.secret_guard import reject_secret_values
from governance.services.common import ensure_can_change


class DeliveryFailed(ConnectorError):
    """The credential was rotated (rotation holds the proven result) but a CI variable did not get the new value."""

    code = "delivery"

    def __init__(self, reason: str, *, rotation: RotationResult | None = None):
        super().__init__(reason)
        self.rotation = rotation


@dataclasses.dataclass(frozen=True)
class DeliveryReport:
    proof: tuple[str, ...]
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


# Declaring a delivery ---------------------------------------------------------------------------

def delivery_add(*, actor: Actor, credential: Credential, store: SecretStore, repository: str, variable_name: str,
                 environment: str = "", value_key: str = "value", masked: bool = True,
                 protected: bool = True) -> CredentialDelivery:
    """Say that a CI variable consumes this credential (its owner, or a security admin). Names only, no values."""
    ensure_can_change(actor, credential)
    if store.kind not in CI_STORE_KINDS:
        raise ValidationError({"store": f"{store} is not a CI store Steward pushes to (GitHub Actions or GitLab)."})
    data = {"repository": repository.strip().strip("/"), "environment": environment.strip(),
            "variable_name": variable_name.strip(), "value_key": value_key.strip() or "value"}
    reject_secret_values(data)
    if not VARIABLE_NAME.match(data["variable_name"]):
        raise ValidationError({"variable_name": "A CI variable name is letters, digits and _ (not starting with "
                                                "a digit)."})
    if store.kind == SecretStoreKind.GITHUB_ACTIONS and data["repository"].count("/") != 1:
        raise ValidationError({"repository": "A GitHub repository is owner/repo."})
    if not data["repository"]:
        raise ValidationError({"repository": "Name the repository or project."})
    with transaction.atomic():
        if CredentialDelivery.objects.filter(store=store, repository=data["repository"],
                                             environment=data["environment"],
                                             variable_name=data["variable_name"]).exists():
            raise ValidationError({"variable_name": "That CI variable already receives a credential."})
        delivery = CredentialDelivery.objects.create(credential=credential, store=store, masked=masked,
                                                     protected=protected, **data)
        audit_append(actor=actor, action="credential.delivery_add", target=credential,
                     summary=f"{credential} is delivered to {delivery}",
                     changes={"delivery": {"before": None, "after": str(delivery)}})
    return delivery


def deliveries_of(credential: Credential) -> list[CredentialDelivery]:
    return list(CredentialDelivery.objects.filter(credential=credential).select_related("store").order_by("pk"))


def location_of(delivery: CredentialDelivery) -> CILocation:
    return CILocation(repository=delivery.repository, environment=delivery.environment, name=delivery.variable_name)


# Reading the value to deliver (in memory only) ----------------------------------------------------

def stored_fields(credential: Credential, version: str) -> dict[str, str]:
    """The fields of the credential's secret at this version, read from its store of record."""
    store = credential.store
    if store is None:
        raise Unsupported(f"{credential} names no store to deliver from.")
    ref = CredentialRef.from_credential(credential)
    if store.kind == SecretStoreKind.OPENBAO_KV:
        kv = registry.kv_connector(store)
        data = kv.read_value(kv.path_of(credential.store_path), int(version) if str(version).isdigit() else None)
        if not data:
            raise ConnectorError(f"OpenBao holds no readable value of {credential} at version {version}.")
        return {str(k): str(v) for k, v in data.items()}
    if store.kind == SecretStoreKind.AWS_SECRETS_MANAGER:
        manager = registry.secrets_manager_connector(store)
        _, text = manager.read(ref, version or None)
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {"value": text}
    raise Unsupported(f"Steward cannot read {credential} from {store} to deliver it: its store of record must be "
                      "OpenBao KV or AWS Secrets Manager.")


# Pushing and withdrawing ------------------------------------------------------------------------

def _record(actor: Actor, credential: Credential, rows: list[tuple[CredentialDelivery, dict, dict]], *,
            action: str, summary: str) -> None:
    """The pushes' rows, the deliveries' new state and one audit event, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        for delivery, push, values in rows:
            DeliveryPush.objects.create(delivery=delivery, performed_at=now, **push)
            CredentialDelivery.objects.filter(pk=delivery.pk).update(**values, updated_at=now)
        audit_append(actor=actor, action=action, target=credential, summary=summary[:500], changes={
            "deliveries": {"before": None, "after": [
                f"{delivery}: {push['outcome']}" for delivery, push, _ in rows]}})


def deliveries_push(*, actor: Actor, credential: Credential, version: str, rotation_job_id: int | None = None,
                    kill_switch_step_id: int | None = None) -> DeliveryReport:
    """Push the credential's value at this version to each of its deliveries; every push is recorded."""
    deliveries = deliveries_of(credential)
    if not deliveries:
        return DeliveryReport((), ())
    rows, proof, failures = [], [], []
    try:
        fields = stored_fields(credential, version)
    except ConnectorError as error:
        fields, read_error = None, error
    for delivery in deliveries:
        push = {"action": PushAction.PUSH, "version": version, "rotation_job_id": rotation_job_id,
                "kill_switch_step_id": kill_switch_step_id}
        try:
            if fields is None:
                raise read_error
            if delivery.value_key not in fields:
                raise ConnectorError(f"The stored secret has no field {delivery.value_key!r} to deliver.")
            connector = registry.ci_connector(delivery.store)
            _state, lines = connector.push(location_of(delivery), fields[delivery.value_key],
                                           masked=delivery.masked, protected=delivery.protected)
        except ConnectorError as error:
            reason = f"{delivery}: {error.reason}"
            failures.append(reason)
            rows.append((delivery, {**push, "outcome": PushOutcome.FAILED, "error_code": error.code,
                                    "detail": reason[:1000]},
                         {"state": DeliveryState.FAILED, "last_error": error.reason[:1000]}))
            continue
        proof.extend(lines)
        rows.append((delivery, {**push, "outcome": PushOutcome.SUCCEEDED, "detail": lines[0][:1000],
                                "proof": list(lines)},
                     {"state": DeliveryState.DELIVERED, "delivered_version": version,
                      "delivered_at": timezone.now(), "last_error": ""}))
    done = len(deliveries) - len(failures)
    _record(actor, credential, rows, action="credential.deliver",
            summary=f"{credential} version {version} pushed to {done} of {len(deliveries)} CI variable(s)"
                    + (f"; failed: {'; '.join(failures)}" if failures else ""))
    return DeliveryReport(tuple(proof), tuple(failures))


def deliveries_withdraw(*, actor: Actor, credential: Credential,
                        kill_switch_step_id: int | None = None) -> DeliveryReport:
    """Delete every CI variable the credential is delivered to, and prove each is gone."""
    deliveries = deliveries_of(credential)
    if not deliveries:
        return DeliveryReport((), ())
    rows, proof, failures = [], [], []
    for delivery in deliveries:
        push = {"action": PushAction.DELETE, "version": credential.store_version,
                "kill_switch_step_id": kill_switch_step_id}
        try:
            lines = registry.ci_connector(delivery.store).withdraw(location_of(delivery))
        except ConnectorError as error:
            reason = f"{delivery}: {error.reason}"
            failures.append(reason)
            rows.append((delivery, {**push, "outcome": PushOutcome.FAILED, "error_code": error.code,
                                    "detail": reason[:1000]},
                         {"state": DeliveryState.FAILED, "last_error": error.reason[:1000]}))
            continue
        proof.extend(lines)
        rows.append((delivery, {**push, "outcome": PushOutcome.SUCCEEDED, "detail": lines[0][:1000],
                                "proof": list(lines)},
                     {"state": DeliveryState.WITHDRAWN, "delivered_version": "", "last_error": ""}))
    _record(actor, credential, rows, action="credential.withdraw",
            summary=f"{credential}: {len(deliveries) - len(failures)} of {len(deliveries)} CI variable(s) deleted"
                    + (f"; failed: {'; '.join(failures)}" if failures else ""))
    return DeliveryReport(tuple(proof), tuple(failures))


def deliveries_after_rotation(*, actor: Actor, credential: Credential, result: RotationResult,
                              rotation_job_id: int | None = None) -> RotationResult:
    """Inside a rotation job, after the connector proved the new value: push it to every delivery.

    Returns the result with the pushes' proof appended; raises DeliveryFailed (carrying the proven
    result) when any push failed, so that the job reports failure and still records the new version.
    """
    report = deliveries_push(actor=actor, credential=credential, version=result.version,
                             rotation_job_id=rotation_job_id)
    if not report.ok:
        raise DeliveryFailed(f"{credential} was rotated to version {result.version} (proven), but the new value did "
                             f"not reach {len(report.failures)} CI variable(s): {'; '.join(report.failures)}",
                             rotation=dataclasses.replace(result, proof=(*result.proof, *report.proof)))
    return dataclasses.replace(result, proof=(*result.proof, *report.proof))
