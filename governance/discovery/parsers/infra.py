"""Ansible, Kubernetes, crontab, Terraform and docker-compose parsers.

Kubernetes CronJobs and crontab lines are scheduled workflows; ServiceAccounts, Terraform identity
resources (aws_iam_access_key, tls_private_key, ...) and the accounts Ansible creates are identities;
a Kubernetes Secret's data and a compose file's literal environment are embedded secrets (their values are
handed back only to be fingerprinted, then dropped). docker-compose services with a restart policy run
without a person, with the secrets their environment references.
"""

from __future__ import annotations

import base64
import binascii
import re

from governance.discovery.parsers.base import (
    Definition,
    DefinitionIdentity,
    DefinitionWorkflow,
    ParseError,
    load_yaml_documents,
    unique,
)

K8S_HINT = re.compile(r"(?m)^apiVersion:\s*\S+\s*$")
K8S_KIND = re.compile(r"(?m)^kind:\s*\S+\s*$")
ANSIBLE_HINT = re.compile(r"(?m)^-\s+(?:hosts|import_playbook|name):")
CRON_LINE = re.compile(r"^\s*(?P<schedule>@(?:reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)|"
                       r"(?:\S+\s+){4}\S+)\s+(?:(?P<user>[a-z_][a-z0-9_-]*)\s+)?(?P<command>\S.*)$")
CRON_FIELD = re.compile(r"^[\d*/,\-]+$|^(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu"
                        r"|fri|sat)", re.I)
SECRET_NAME = re.compile(r"(?i)(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|"
                         r"credential)")
VARIABLE_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
TF_RESOURCE = re.compile(r'(?m)^\s*resource\s+"(?P<type>[\w-]+)"\s+"(?P<name>[\w-]+)"\s*\{')
TF_IDENTITY_TYPES = {
    "aws_iam_access_key", "aws_iam_user", "aws_iam_role", "aws_iam_service_linked_role", "tls_private_key",
    "google_service_account", "google_service_account_key", "azuread_service_principal",
    "azuread_service_principal_password", "azuread_application_password", "kubernetes_service_account",
    "random_password", "vault_approle_auth_backend_role", "github_actions_secret", "gitlab_project_variable",
    "postgresql_role", "mysql_user",
}
TF_PRIVILEGED = re.compile(r"AdministratorAccess|\"Action\"\s*:\s*\"\*\"|roles/owner|roles/editor|cluster-admin"
                           r"|superuser\s*=\s*true")
ANSIBLE_USER_MODULES = {"user", "ansible.builtin.user", "postgresql_user", "community.postgresql.postgresql_user",
                        "mysql_user", "community.mysql.mysql_user", "community.general.redis", "iam_user",
                        "amazon.aws.iam_user"}
ANSIBLE_PRIVILEGED = re.compile(r"(?<!NO)SUPERUSER|(?<!NO)CREATEROLE|sudo|wheel|ALL PRIVILEGES|\*\.\*", re.I)
PRIVILEGED_K8S_ROLES = {"cluster-admin", "admin", "edit"}


def looks_like_kubernetes(text: str) -> bool:
    return bool(K8S_HINT.search(text) and K8S_KIND.search(text))


def looks_like_ansible(text: str) -> bool:
    return bool(ANSIBLE_HINT.search(text)) and ("tasks:" in text or "roles:" in text or "import_playbook" in text)


# Kubernetes ---------------------------------------------------------------------------------------

def _pod_spec(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    template = spec.get("template") or {}
    return template.get("spec") or (spec if "containers" in spec else {})


def _pod_secrets(pod: dict) -> set[str]:
    names: set[str] = set()
    for container in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}) if isinstance(env, dict) else {}
            if ref.get("name"):
                names.add(f"{ref['name']}/{ref.get('key', '')}".rstrip("/"))
        for source in container.get("envFrom") or []:
            ref = (source.get("secretRef") or {}) if isinstance(source, dict) else {}
            if ref.get("name"):
                names.add(str(ref["name"]))
    for volume in pod.get("volumes") or []:
        secret = (volume.get("secret") or {}) if isinstance(volume, dict) else {}
        if secret.get("secretName"):
            names.add(str(secret["secretName"]))
    return names


def _line_of(text: str, needle: str) -> int:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


def parse_kubernetes(path: str, text: str) -> Definition:
    definition = Definition(path=path, platform="Kubernetes")
    bound: dict[str, bool] = {}
    docs = [d for d in load_yaml_documents(path, text) if isinstance(d, dict)]
    for doc in docs:  # role bindings first: they make a service account privileged
        if doc.get("kind") in ("ClusterRoleBinding", "RoleBinding"):
            role = str((doc.get("roleRef") or {}).get("name", ""))
            for subject in doc.get("subjects") or []:
                if isinstance(subject, dict) and subject.get("kind") == "ServiceAccount":
                    bound[str(subject.get("name"))] = bound.get(str(subject.get("name")), False) or (
                        role in PRIVILEGED_K8S_ROLES)
    for doc in docs:
        kind = doc.get("kind")
        meta = doc.get("metadata") or {}
        name = str(meta.get("name") or "")
        namespace = str(meta.get("namespace") or "default")
        if kind == "ServiceAccount":
            definition.identities.append(DefinitionIdentity(
                key=f"{path}#ServiceAccount/{namespace}/{name}", name=f"{namespace}/{name}",
                type="Kubernetes ServiceAccount", privileged=bound.get(name, False),
                facts={"namespace": namespace, "bound_roles_privileged": bound.get(name, False)}))
        elif kind == "Secret":
            for field in ("data", "stringData"):
                for key, value in (doc.get(field) or {}).items():
                    if not value:
                        continue
                    if field == "data":
                        try:
                            value = base64.b64decode(str(value), validate=True).decode("utf-8", "replace")
                        except (binascii.Error, ValueError):
                            value = str(value)
                    definition.embedded_secrets.append(
                        (_line_of(text, f"{key}:"), f"a Kubernetes Secret value ({namespace}/{name}.{key})",
                         str(value)))
        elif kind == "CronJob":
            pod = _pod_spec(doc)
            account = str(pod.get("serviceAccountName") or "default")
            definition.workflows.append(DefinitionWorkflow(
                key=f"{path}#CronJob/{namespace}/{name}", name=f"{namespace}/{name}", platform="Kubernetes",
                kind="scheduled_job", triggers=[f"cron {(doc.get('spec') or {}).get('schedule', '')}"],
                unattended=True, secrets=sorted(_pod_secrets(pod)), identities=[f"{namespace}/{account}"],
                privileged=bound.get(account, False)))
    return definition


# crontab ------------------------------------------------------------------------------------------

def parse_crontab(path: str, text: str) -> Definition:
    definition = Definition(path=path, platform="cron")
    system_format = "/cron.d/" in f"/{path}" or path.rsplit("/", 1)[-1] == "crontab" and path.startswith("etc/")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", stripped):
            continue
        match = CRON_LINE.match(stripped)
        if not match:
            continue
        schedule = match.group("schedule")
        if not schedule.startswith("@") and not all(CRON_FIELD.match(f) for f in schedule.split()):
            continue
        user, command = match.group("user"), match.group("command")
        if not system_format and user:
            command = f"{user} {command}"
            user = None
        secrets = unique(v for v in VARIABLE_REFERENCE.findall(command) if SECRET_NAME.search(v))
        program = command.split()[0].rsplit("/", 1)[-1][:80]
        definition.workflows.append(DefinitionWorkflow(
            key=f"{path}:{number}", name=f"{path}: {program} ({schedule})", platform="cron", kind="scheduled_job",
            triggers=[f"cron {schedule}"], unattended=True, secrets=secrets,
            identities=[user] if user else [], privileged=user == "root"))
    return definition


# Terraform ----------------------------------------------------------------------------------------

def parse_terraform(path: str, text: str) -> Definition:
    definition = Definition(path=path, platform="Terraform")
    privileged = bool(TF_PRIVILEGED.search(text))
    for match in TF_RESOURCE.finditer(text):
        kind, name = match.group("type"), match.group("name")
        if kind not in TF_IDENTITY_TYPES:
            continue
        definition.identities.append(DefinitionIdentity(
            key=f"{path}#{kind}.{name}", name=f"{kind}.{name}", type=kind,
            privileged=privileged and kind in ("aws_iam_user", "aws_iam_role", "aws_iam_access_key",
                                               "google_service_account", "google_service_account_key",
                                               "azuread_service_principal", "postgresql_role"),
            facts={"resource": f"{kind}.{name}", "line": text.count("\n", 0, match.start()) + 1}))
    return definition


# Ansible ------------------------------------------------------------------------------------------

def parse_ansible(path: str, text: str) -> Definition:
    definition = Definition(path=path, platform="Ansible")
    plays = load_yaml_documents(path, text)
    plays = plays[0] if plays and isinstance(plays[0], list) else []
    for play in plays:
        if not isinstance(play, dict):
            continue
        for section in ("tasks", "pre_tasks", "post_tasks", "handlers"):
            for task in play.get(section) or []:
                if not isinstance(task, dict):
                    continue
                for module in ANSIBLE_USER_MODULES & set(task):
                    args = task[module] if isinstance(task[module], dict) else {}
                    account = str(args.get("name") or args.get("user") or "")
                    if not account or "{{" in account:
                        continue
                    attrs = str(args.get("role_attr_flags", "")) + str(args.get("groups", "")) + str(
                        args.get("priv", ""))
                    definition.identities.append(DefinitionIdentity(
                        key=f"{path}#{module}/{account}", name=account, type=f"Ansible {module}",
                        privileged=bool(ANSIBLE_PRIVILEGED.search(attrs)),
                        facts={"module": module, "hosts": str(play.get("hosts", "")),
                               "no_log": bool(task.get("no_log"))}))
    return definition


# docker-compose -----------------------------------------------------------------------------------

def parse_compose(path: str, text: str) -> Definition:
    docs = load_yaml_documents(path, text)
    if not docs or not isinstance(docs[0], dict):
        raise ParseError(f"{path}: a compose file must be a mapping.")
    definition = Definition(path=path, platform="docker-compose")
    for name, service in (docs[0].get("services") or {}).items():
        if not isinstance(service, dict):
            continue
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in str(item) else (str(item), None) for item in environment)
        referenced = set()
        for key, value in environment.items():
            if not SECRET_NAME.search(str(key)):
                continue
            if value is None or "$" in str(value):
                referenced.add(next(iter(VARIABLE_REFERENCE.findall(str(value or ""))), str(key)))
            else:
                definition.embedded_secrets.append((_line_of(text, f"{key}"), f"a compose environment value ({key})",
                                                    str(value)))
        referenced.update(str(s if isinstance(s, str) else s.get("source")) for s in service.get("secrets") or [])
        restart = str(service.get("restart") or "")
        if restart in ("always", "unless-stopped", "on-failure") or referenced:
            definition.workflows.append(DefinitionWorkflow(
                key=f"{path}#{name}", name=f"{path}: {name}", platform="docker-compose", kind="integration",
                triggers=[f"restart {restart}"] if restart else ["started by a person"],
                unattended=restart in ("always", "unless-stopped", "on-failure"), secrets=sorted(referenced),
                privileged=bool(service.get("privileged"))))
    return definition
