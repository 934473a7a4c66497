"""A stand-in for the GitHub Actions secrets and GitLab CI/CD variables APIs on loopback (demo and tests).

It implements only the documented endpoints the connectors use (governance.connectors.github_actions
and gitlab_ci), with their status codes and bodies, and checks the token on every request. GitHub
secrets arrive as libsodium sealed boxes: the stand-in holds each repository's and environment's
private key, decrypts every value it receives (a box it cannot open is answered 422, as GitHub
does), and keeps the plain value only so that a test, or the demo, can prove the value arrived
(secret_value). GitLab variables are kept with their masked/protected flags and environment scope.

Repositories, environments and projects must be declared (add_repository, add_project) unless
the server was made with auto_create (the demo), so that a wrong name answers 404 as it would.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

GITHUB_SECRET = re.compile(
    r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?:actions|environments/(?P<env>[^/]+))/secrets/(?P<name>[^/]+)$")
GITLAB_PROJECT = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)(?P<rest>/variables(?:/(?P<key>[^/]+))?)?$")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SecretBox:
    """One GitHub repository's or environment's key pair and secrets."""

    key: PrivateKey = field(default_factory=PrivateKey.generate)
    secrets: dict[str, dict] = field(default_factory=dict)

    @property
    def key_id(self) -> str:
        return base64.b64encode(bytes(self.key.public_key)[:8]).decode().rstrip("=")


class CIStandIn:
    def __init__(self, *, github_token: str, gitlab_token: str, auto_create: bool = False):
        self.github_token, self.gitlab_token, self.auto_create = github_token, gitlab_token, auto_create
        self.boxes: dict[tuple[str, str], SecretBox] = {}  # (owner/repo, environment or "")
        self.projects: dict[str, dict] = {}  # project path -> {"id": n, "variables": {(key, scope): {...}}}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.httpd: ThreadingHTTPServer | None = None

    # Declaring what exists

    def add_repository(self, repository: str, *environments: str) -> None:
        with self.lock:
            self.boxes.setdefault((repository, ""), SecretBox())
            for environment in environments:
                self.boxes.setdefault((repository, environment), SecretBox())

    def add_project(self, path: str) -> None:
        with self.lock:
            self.projects.setdefault(path, {"id": len(self.projects) + 1, "variables": {}})

    # What a test (or the demo) reads to prove a value arrived

    def secret_value(self, repository: str, name: str, environment: str = "") -> str | None:
        box = self.boxes.get((repository, environment))
        entry = box.secrets.get(name) if box else None
        return entry["plain"] if entry else None

    def variable(self, project: str, key: str, scope: str = "*") -> dict | None:
        variables = (self.projects.get(project) or {}).get("variables", {})
        return variables.get((key, scope))

    # Serving

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> CIStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the demo's console is for the portal
                pass

            def _answer(self, status: int, body=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not raw:
                    return {}
                if "json" in (self.headers.get("Content-Type") or ""):
                    return json.loads(raw)
                return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

            def _route(self, method: str):
                url = urlsplit(self.path)
                stand_in.requests.append((method, url.path))
                try:
                    if url.path.startswith("/api/v4/"):
                        if self.headers.get("PRIVATE-TOKEN") != stand_in.gitlab_token:
                            return self._answer(401, {"message": "401 Unauthorized"})
                        return self._answer(*stand_in.gitlab(method, url.path, parse_qs(url.query), self._body()))
                    if self.headers.get("Authorization") != f"Bearer {stand_in.github_token}":
                        return self._answer(401, {"message": "Bad credentials"})
                    return self._answer(*stand_in.github(method, url.path, self._body()))
                except (ValueError, KeyError) as error:
                    return self._answer(400, {"message": f"Bad request: {type(error).__name__}"})

            def do_GET(self):
                self._route("GET")

            def do_PUT(self):
                self._route("PUT")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, name="ci-stand-in", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    # GitHub: GET public-key, GET/PUT/DELETE a repository or environment secret

    def _box(self, repository: str, environment: str) -> SecretBox | None:
        with self.lock:
            box = self.boxes.get((repository, environment))
            if box is None and self.auto_create:
                box = self.boxes[(repository, environment)] = SecretBox()
            return box

    def github(self, method: str, path: str, body: dict):
        public_key = re.match(r"^/repos/([^/]+)/([^/]+)/(?:actions|environments/([^/]+))/secrets/public-key$", path)
        if public_key and method == "GET":
            repository = f"{unquote(public_key[1])}/{unquote(public_key[2])}"
            box = self._box(repository, unquote(public_key[3] or ""))
            if box is None:
                return 404, {"message": "Not Found"}
            return 200, {"key_id": box.key_id, "key": base64.b64encode(bytes(box.key.public_key)).decode()}
        match = GITHUB_SECRET.match(path)
        if not match:
            return 404, {"message": "Not Found"}
        repository = f"{unquote(match['owner'])}/{unquote(match['repo'])}"
        box = self._box(repository, unquote(match["env"] or ""))
        name = unquote(match["name"])
        if box is None:
            return 404, {"message": "Not Found"}
        with self.lock:
            entry = box.secrets.get(name)
            if method == "GET":
                if entry is None:
                    return 404, {"message": "Not Found"}
                return 200, {"name": name, "created_at": entry["created_at"], "updated_at": entry["updated_at"]}
            if method == "DELETE":
                box.secrets.pop(name, None)
                return 204, None
            if method == "PUT":
                if body.get("key_id") != box.key_id:
                    return 422, {"message": "key_id does not match the current public key"}
                try:
                    plain = SealedBox(box.key).decrypt(base64.b64decode(body["encrypted_value"])).decode()
                except (CryptoError, ValueError):
                    return 422, {"message": "encrypted_value is not a sealed box for this key"}
                stamp = _now()
                box.secrets[name] = {"plain": plain, "created_at": (entry or {}).get("created_at", stamp),
                                     "updated_at": stamp}
                return (204 if entry else 201), None
        return 404, {"message": "Not Found"}

    # GitLab: GET project, variables CRUD

    def _project(self, ident: str) -> tuple[str, dict] | None:
        path = unquote(ident)
        with self.lock:
            for name, project in self.projects.items():
                if path in (name, str(project["id"])):
                    return name, project
            if self.auto_create and not path.isdigit():
                project = self.projects[path] = {"id": len(self.projects) + 1, "variables": {}}
                return path, project
        return None

    def gitlab(self, method: str, path: str, query: dict, body: dict):
        match = GITLAB_PROJECT.match(path)
        found = self._project(match["project"]) if match else None
        if found is None:
            return 404, {"message": "404 Project Not Found"}
        name, project = found
        if not match["rest"]:
            return (200, {"id": project["id"], "path_with_namespace": name}) if method == "GET" else (405, None)
        variables = project["variables"]
        scope = (query.get("filter[environment_scope]") or [None])[0]
        key = unquote(match["key"]) if match["key"] else None
        with self.lock:
            if key is None and method == "POST":
                key, scope = body["key"], body.get("environment_scope") or "*"
                if (key, scope) in variables:
                    return 400, {"message": {"key": [f"({key}) has already been taken"]}}
                error = self._invalid(body)
                if error:
                    return 400, {"message": {"value": [error]}}
                variables[(key, scope)] = self._variable(key, scope, body)
                return 201, variables[(key, scope)]
            if key is None:
                return 405, None
            matches = [k for k in variables if k[0] == key and (scope is None or k[1] == scope)]
            if not matches:
                return 404, {"message": "404 Variable Not Found"}
            if len(matches) > 1:
                return 409, {"message": "There are multiple variables with provided parameters. Please use "
                                        "'filter[environment_scope]'"}
            found_key = matches[0]
            if method == "GET":
                return 200, variables[found_key]
            if method == "DELETE":
                del variables[found_key]
                return 204, None
            if method == "PUT":
                merged = {**variables[found_key], **body}
                error = self._invalid(merged)
                if error:
                    return 400, {"message": {"value": [error]}}
                variables[found_key] = self._variable(key, found_key[1], merged)
                return 200, variables[found_key]
        return 405, None

    @staticmethod
    def _flag(value) -> bool:
        return value if isinstance(value, bool) else str(value).lower() == "true"

    def _invalid(self, body: dict) -> str:
        value = str(body.get("value", ""))
        if self._flag(body.get("masked", False)) and (len(value) < 8 or any(c.isspace() for c in value)):
            return "is invalid: a masked value must be a single line of at least 8 characters"
        return ""

    def _variable(self, key: str, scope: str, body: dict) -> dict:
        return {"key": key, "value": str(body.get("value", "")), "variable_type": "env_var",
                "masked": self._flag(body.get("masked", False)), "protected": self._flag(body.get("protected", False)),
                "raw": self._flag(body.get("raw", False)), "environment_scope": scope, "description": None}
