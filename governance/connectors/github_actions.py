"""GitHub Actions secrets (repository and environment): sealed-box encrypted PUT, metadata read, DELETE.

Store: SecretStore(kind="github_actions"), address = the REST API (default https://api.github.com;
GitHub Enterprise Server: https://HOST/api/v3), credential_env_var = the variable holding a token
that may manage the repository's secrets (fine-grained: "Secrets" read and write; environments:
"Environments" read and write).

The documented endpoints used:
  GET    /repos/{owner}/{repo}/actions/secrets/public-key
  GET    /repos/{owner}/{repo}/actions/secrets/{name}              PUT / DELETE the same path
  GET    /repos/{owner}/{repo}/environments/{env}/secrets/public-key
  GET    /repos/{owner}/{repo}/environments/{env}/secrets/{name}   PUT / DELETE the same path
A value is encrypted on Steward's side with a libsodium sealed box (PyNaCl) to the repository's
(or environment's) public key; GitHub can decrypt it, nobody reading the request can. GitHub never
returns a secret's value, so the proof of a push is the secret's updated_at, read back after it.
"""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

from nacl.public import PublicKey, SealedBox

from governance.connectors.base import ReferenceBroken, VerificationFailed, parse_time
from governance.connectors.ci_common import (
    CILocation,
    CISettings,
    CIVariableConnector,
    VariableState,
    check_status,
    http_errors,
)

DEFAULT_ADDRESS = "https://api.github.com"
API_VERSION = "2022-11-28"
CLOCK_SKEW = dt.timedelta(seconds=5)


def seal(public_key_b64: str, value: str) -> str:
    """The value encrypted to the public key with a libsodium sealed box, base64-encoded as GitHub expects."""
    box = SealedBox(PublicKey(base64.b64decode(public_key_b64)))
    return base64.b64encode(box.encrypt(value.encode())).decode()


class GitHubActions(CIVariableConnector):
    kind = "github_actions"
    system_label = "GitHub Actions"

    @classmethod
    def from_store(cls, store) -> GitHubActions:
        return cls(CISettings.from_store(store, default_address=DEFAULT_ADDRESS))

    def _base(self, location: CILocation) -> str:
        owner_repo = location.repository.strip("/")
        if owner_repo.count("/") != 1:
            raise ReferenceBroken(f"{owner_repo!r} is not a GitHub owner/repo.")
        owner, repo = (quote(part, safe="") for part in owner_repo.split("/"))
        base = f"{self.settings.address}/repos/{owner}/{repo}"
        if location.environment:
            return f"{base}/environments/{quote(location.environment, safe='')}/secrets"
        return f"{base}/actions/secrets"

    def _request(self, method: str, url: str, what: str, *, values=(), **kwargs):
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "Authorization": f"Bearer {self.settings.token()}"}
        with http_errors(what, values=values):
            return self.session.request(method, url, headers=headers, timeout=self.settings.timeout, **kwargs)

    def public_key(self, location: CILocation) -> tuple[str, str]:
        what = f"Reading the public key of {location.label}"
        response = self._request("GET", f"{self._base(location)}/public-key", what)
        check_status(response, what)
        body = response.json()
        return str(body["key_id"]), str(body["key"])

    def state(self, location: CILocation) -> VariableState | None:
        what = f"Reading {location.label}"
        response = self._request("GET", f"{self._base(location)}/{location.name}", what)
        if response.status_code == 404:
            self.public_key(location)  # a missing repository or environment is a broken reference, not absence
            return None
        check_status(response, what)
        body = response.json()
        updated = parse_time(body.get("updated_at"))
        return VariableState(version=str(body.get("updated_at") or ""), updated_at=updated,
                             detail=f"updated {body.get('updated_at')}")

    def push(self, location, value, *, masked=True, protected=True):
        started = dt.datetime.now(dt.UTC)
        key_id, key = self.public_key(location)
        what = f"Writing {location.label}"
        response = self._request("PUT", f"{self._base(location)}/{location.name}", what, values=[value],
                                 json={"encrypted_value": seal(key, value), "key_id": key_id})
        check_status(response, what, values=[value])
        state = self.state(location)
        if state is None or state.updated_at is None or state.updated_at < started - CLOCK_SKEW:
            raise VerificationFailed(f"GitHub Actions: {location.label} was written but its updated_at does not "
                                     "show it.")
        created = "created" if response.status_code == 201 else "updated"
        return state, (f"GitHub Actions {self.settings.address}: {location.label} {created} (sealed box to public key "
                       f"{key_id}); GitHub reports it updated at {state.version}.",)

    def delete(self, location: CILocation) -> None:
        what = f"Deleting {location.label}"
        response = self._request("DELETE", f"{self._base(location)}/{location.name}", what)
        check_status(response, what, missing_ok=True)

    def check_access(self, location: CILocation) -> str:
        key_id, _ = self.public_key(location)
        return f"public key {key_id} readable for {location.repository}" + (
            f" (environment {location.environment})" if location.environment else "")
