"""GitLab CI/CD variables of a project: create or update (masked, protected), read back, delete.

Store: SecretStore(kind="gitlab_ci"), address = the GitLab instance (default https://gitlab.com),
credential_env_var = the variable holding a token with the api scope and the Maintainer role on
the projects (project, group or personal access token).

The documented endpoints used (project id: numeric, or the URL-encoded path "group/project"):
  GET    /api/v4/projects/:id                                    (verification mode: access)
  GET    /api/v4/projects/:id/variables/:key?filter[environment_scope]=...
  POST   /api/v4/projects/:id/variables                          (key, value, masked, protected, raw,
                                                                  environment_scope)
  PUT    /api/v4/projects/:id/variables/:key?filter[environment_scope]=...
  DELETE /api/v4/projects/:id/variables/:key?filter[environment_scope]=...
A variable's environment scope is the location's environment ("*" when empty). The API returns a
variable's value to a Maintainer, so a push is proven by reading it back and comparing it (in
memory; the value is never logged or stored). Variables carry no timestamps: a variable's version
is a short SHA-256 digest of its value (the values are Steward's random 256-bit secrets or keys).
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from governance.connectors.base import ConnectorError, VerificationFailed
from governance.connectors.ci_common import (
    CILocation,
    CISettings,
    CIVariableConnector,
    VariableState,
    check_status,
    http_errors,
)

DEFAULT_ADDRESS = "https://gitlab.com"
MASKABLE_MINIMUM = 8


def value_version(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:16]


class GitLabCI(CIVariableConnector):
    kind = "gitlab_ci"
    system_label = "GitLab CI/CD"

    @classmethod
    def from_store(cls, store) -> GitLabCI:
        return cls(CISettings.from_store(store, default_address=DEFAULT_ADDRESS))

    def _project(self, location: CILocation) -> str:
        return f"{self.settings.address}/api/v4/projects/{quote(location.repository.strip('/'), safe='')}"

    @staticmethod
    def scope(location: CILocation) -> str:
        return location.environment or "*"

    def _request(self, method: str, url: str, what: str, *, values=(), **kwargs):
        headers = {"PRIVATE-TOKEN": self.settings.token(), "Accept": "application/json"}
        with http_errors(what, values=values):
            return self.session.request(method, url, headers=headers, timeout=self.settings.timeout, **kwargs)

    def _variable_url(self, location: CILocation) -> str:
        return f"{self._project(location)}/variables/{quote(location.name, safe='')}"

    def _read(self, location: CILocation) -> dict | None:
        what = f"Reading {location.label}"
        response = self._request("GET", self._variable_url(location), what,
                                 params={"filter[environment_scope]": self.scope(location)})
        if response.status_code == 404:
            self.check_access(location)  # a missing project is a broken reference, not a missing variable
            return None
        check_status(response, what)
        return response.json()

    def state(self, location: CILocation) -> VariableState | None:
        body = self._read(location)
        if body is None:
            return None
        flags = ", ".join(f for f in ("masked", "protected") if body.get(f)) or "neither masked nor protected"
        return VariableState(version=value_version(str(body.get("value") or "")), updated_at=None,
                             detail=f"environment scope {body.get('environment_scope')}, {flags}")

    def push(self, location, value, *, masked=True, protected=True):
        if masked and (len(value) < MASKABLE_MINIMUM or any(c.isspace() for c in value)):
            raise ConnectorError(f"GitLab masks only single-line values of {MASKABLE_MINIMUM}+ characters: "
                                 f"{location.label} was not written.")
        fields = {"value": value, "masked": masked, "protected": protected, "raw": True,
                  "environment_scope": self.scope(location)}
        existing = self._read(location)
        if existing is None:
            what = f"Creating {location.label}"
            response = self._request("POST", f"{self._project(location)}/variables", what, values=[value],
                                     json={"key": location.name, **fields})
        else:
            what = f"Updating {location.label}"
            response = self._request("PUT", self._variable_url(location), what, values=[value], json=fields,
                                     params={"filter[environment_scope]": self.scope(location)})
        check_status(response, what, values=[value])
        stored = self._read(location)
        if stored is None or not hmac.compare_digest(str(stored.get("value") or ""), value):
            raise VerificationFailed(f"GitLab CI/CD: {location.label} does not hold the value written.")
        if bool(stored.get("masked")) != masked or bool(stored.get("protected")) != protected:
            raise VerificationFailed(f"GitLab CI/CD: {location.label} is not masked={masked}, protected={protected}.")
        flags = ", ".join(f for f, on in (("masked", masked), ("protected", protected)) if on) or "unmasked"
        done = "created" if existing is None else "updated"
        return (VariableState(version=value_version(value), updated_at=None, detail=flags),
                (f"GitLab CI/CD {self.settings.address}: {location.label} {done} ({flags}, scope "
                 f"{self.scope(location)}); read back, it holds the new value.",))

    def delete(self, location: CILocation) -> None:
        what = f"Deleting {location.label}"
        response = self._request("DELETE", self._variable_url(location), what,
                                 params={"filter[environment_scope]": self.scope(location)})
        check_status(response, what, missing_ok=True)

    def check_access(self, location: CILocation) -> str:
        what = f"Reading the project {location.repository}"
        response = self._request("GET", self._project(location), what)
        check_status(response, what)
        body = response.json()
        return f"project {body.get('path_with_namespace') or location.repository} (id {body.get('id')}) readable"
