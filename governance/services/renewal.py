"""Certificate renewal's second half: the certificate a renewal replaced is revoked when its overlap ends.

A proven renewal (services.rotation) records, in the transaction that records the new certificate,
the serial it superseded (CertificateSupersession, unique per credential and serial, so a renewal
recorded twice supersedes once) and announces the new certificate by webhook (certificate.renewed:
serial, expiry, where its consumers read it). The old certificate stays valid for
STEWARD_CERT_REVOKE_OVERLAP_HOURS, so consumers can switch over; then the renewal sweep revokes it at
OpenBao under a lease and records the revocation time OpenBao reports and the CRL proof. A
credential that is no longer active (suspended, revoked: an incident) has its superseded
certificates revoked at once, overlap or not. A failed revocation is recorded with its reason,
audited, told to the owner, and tried again by the next sweep, up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from governance import leases
from governance.audit import audit_append
from governance.choices import CredentialStatus
from governance.connectors import registry
from governance.connectors.base import ConnectorError, RotationResult
from governance.connectors.openbao_pki import serial_named_by
from governance.models import Credential
from governance.models.notifications import NotificationKind
from governance.models.renewal import CertificateSupersession, SupersessionStatus
from governance.services.lifecycle import lifecycle_actor, notify_owner
from governance.services.webhooks import webhook_event_emit

S = SupersessionStatus
MAX_ATTEMPTS = 5
BATCH = 200


def revoke_overlap() -> dt.timedelta:
    return dt.timedelta(hours=int(settings.STEWARD_CERT_REVOKE_OVERLAP_HOURS))


def renewal_record(*, credential: Credential, result: RotationResult, job_id: int) -> CertificateSupersession | None:
    """Inside the transaction recording a proven renewal (credential as it was before it): the superseded
    certificate to revoke after the overlap, and the certificate.renewed webhook. None for a first issue."""
    previous = serial_named_by(credential.store_path, credential.identifier)
    new = serial_named_by(result.store_path or "", result.identifier or "") or result.version
    superseded = None
    if previous and previous != new:
        superseded, _ = CertificateSupersession.objects.get_or_create(
            credential=credential, serial=previous, defaults={
                "superseded_by": new, "superseded_at": result.rotated_at,
                "revoke_after": result.rotated_at + revoke_overlap()})
    webhook_event_emit(event_type="certificate.renewed", payload={
        "credential_id": credential.pk, "credential": credential.name, "job_id": job_id, "serial": new,
        "expires_at": result.expires_at.isoformat() if result.expires_at else None,
        "store_path": result.store_path or credential.store_path, "fingerprint": result.fingerprint,
        "superseded_serial": previous if superseded else None,
        "superseded_revoked_after": superseded.revoke_after.isoformat() if superseded else None})
    return superseded


def supersessions_due(*, now: dt.datetime):
    """Superseded certificates to revoke now: overlap ended, or their credential is no longer active."""
    waiting = Q(status=S.PENDING) | Q(status=S.FAILED, attempt_count__lt=MAX_ATTEMPTS)
    due = Q(revoke_after__lte=now) | ~Q(credential__status=CredentialStatus.ACTIVE)
    return CertificateSupersession.objects.filter(waiting, due).order_by("revoke_after", "pk")


def superseded_certificates_revoke(*, now: dt.datetime | None = None, task_id: str = "") -> dict:
    """The renewal sweep: revoke every due superseded certificate, each under its own lease (runs twice safely)."""
    now = now or timezone.now()
    counts = {"revoked": 0, "failed": 0, "skipped": 0}
    for pk in list(supersessions_due(now=now).values_list("pk", flat=True)[:BATCH]):
        counts[superseded_certificate_revoke(supersession_id=pk, task_id=task_id)] += 1
    return counts


def superseded_certificate_revoke(*, supersession_id: int, task_id: str = "") -> str:
    """Revoke one superseded certificate at OpenBao and record the proof. Returns revoked, failed or skipped."""
    lease = leases.lease_claim(CertificateSupersession, supersession_id, sources=[S.PENDING, S.FAILED, S.RUNNING],
                               running=S.RUNNING, owner=leases.lease_owner(task_id),
                               where=Q(attempt_count__lt=MAX_ATTEMPTS), attempt_count=F("attempt_count") + 1)
    if lease is None:
        return "skipped"
    row = CertificateSupersession.objects.select_related(
        "credential__store", "credential__system", "credential__owner", "credential__team").get(pk=supersession_id)
    credential, actor = row.credential, lifecycle_actor(task_id or f"supersession-{row.pk}")
    try:
        connector = registry.pki_connector(credential.store)
        revoked_at, proof = connector.revoke_serial_at(row.serial)
    except ConnectorError as error:
        with transaction.atomic():
            if not lease.release(target=S.FAILED, last_error=error.reason[:1000]):
                return "skipped"
            audit_append(actor=actor, action="certificate.superseded_revoke_failed", target=credential,
                         summary=f"Revoking {credential}'s superseded certificate {row.serial} failed "
                                 f"(attempt {row.attempt_count}): {error.reason}"[:500])
            notify_owner(credential, subject=f"[Steward] The old certificate of {credential} is still valid",
                         body=f"Steward renewed {credential} and could not revoke the certificate it replaced "
                              f"({row.serial}, attempt {row.attempt_count} of {MAX_ATTEMPTS}).\n"
                              f"Reason: {error.reason}\nThe renewal sweep tries again.",
                         kind=NotificationKind.CERTIFICATE_NOT_REVOKED,
                         dedupe_key=f"supersession:{row.pk}:failed:{row.attempt_count}")
        return "failed"
    with transaction.atomic():
        if not lease.release(target=S.REVOKED, revoked_at=revoked_at, proof=list(proof), last_error=""):
            return "skipped"  # taken over: the new holder revokes (harmlessly again) and records it
        audit_append(actor=actor, action="certificate.superseded_revoke", target=credential,
                     summary=f"Revoked {credential}'s superseded certificate {row.serial} (replaced by "
                             f"{row.superseded_by}) at {revoked_at:%Y-%m-%d %H:%M:%S} UTC"[:500],
                     changes={"superseded_serial": {"before": row.serial, "after": None}})
    return "revoked"
