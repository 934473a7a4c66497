"""What the governance capabilities lease, registered with the lease recovery (governance.leases).

Called once from GovernanceConfig.ready(): governance.leases is core infrastructure and imports no
capability, so each capability names here the model it leases and the service that resumes it.
"""

from governance import leases
from governance.models.checks import SweepRun, SweepStatus
from governance.models.lifecycle import (
    CredentialRevocation,
    KillSwitchActivation,
    KillSwitchStatus,
    RevocationStatus,
    RotationJob,
    RotationStatus,
)
from governance.models.provisioning import CredentialProvisioning, ProvisioningStatus
from governance.services.deprovision import revocations_recover
from governance.services.killswitch import kill_switch_recover
from governance.services.provisioning import provisionings_recover
from governance.services.rotation_batch import rotation_jobs_recover
from governance.services.sweep import sweep_runs_recover


def register_lease_recoveries() -> None:
    leases.register_recovery(leases.Recovery(
        name="rotation_jobs", model=RotationJob, running=RotationStatus.RUNNING, recover=rotation_jobs_recover))
    leases.register_recovery(leases.Recovery(
        name="revocations", model=CredentialRevocation, running=RevocationStatus.RUNNING,
        recover=revocations_recover))
    leases.register_recovery(leases.Recovery(
        name="kill_switches", model=KillSwitchActivation, running=KillSwitchStatus.RUNNING,
        recover=kill_switch_recover))
    leases.register_recovery(leases.Recovery(
        name="sweep_runs", model=SweepRun, running=SweepStatus.RUNNING, recover=sweep_runs_recover))
    leases.register_recovery(leases.Recovery(
        name="provisionings", model=CredentialProvisioning, running=ProvisioningStatus.RUNNING,
        recover=provisionings_recover))
