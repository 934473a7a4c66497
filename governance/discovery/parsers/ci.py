"""GitHub Actions, GitLab CI and Jenkinsfile parsers: triggers, referenced secrets, permissions.

A definition becomes a discovered workflow when one of its triggers runs it without a person:
GitHub schedule / repository_dispatch / workflow_run / workflow_call and pushes to a branch (the deploy runs
unattended once merged); GitLab schedules, triggers, API and pipeline sources and jobs on the default branch;
Jenkins cron, pollSCM and upstream triggers.
"""

from __future__ import annotations

import re

from governance.discovery.parsers.base import (
    Definition,
    DefinitionWorkflow,
    ParseError,
    load_yaml_documents,
    unique,
)

GITHUB_SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
GITHUB_UNATTENDED = {"schedule", "repository_dispatch", "workflow_run", "workflow_call", "push", "deployment",
                     "pull_request_target", "release"}
GITHUB_PRIVILEGED_SCOPES = {"contents", "packages", "id-token", "deployments", "actions", "security-events",
                            "pages", "statuses"}
GITLAB_UNATTENDED_SOURCES = {"schedule", "schedules", "trigger", "triggers", "api", "pipeline", "pipelines",
                             "web_hook", "merge_request_event", "push", "branches"}
GITLAB_KEYWORDS = {"stages", "variables", "default", "include", "workflow", "image", "services", "cache",
                   "before_script", "after_script", "types", "pages"}
SECRET_NAME = re.compile(r"(?i)(?:token|secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|"
                         r"credential|auth)")
VARIABLE_REFERENCE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")
JENKINS_CREDENTIALS = re.compile(r"""credentials\(\s*['"]([^'"]+)['"]\s*\)""")
JENKINS_CREDENTIALS_ID = re.compile(r"""credentialsId\s*:\s*['"]([^'"]+)['"]""")
JENKINS_TRIGGERS = re.compile(r"triggers\s*\{(?P<body>[^}]*)\}", re.S)
JENKINS_TRIGGER_WORDS = re.compile(r"\b(cron|pollSCM|upstream|githubPush|gitlab|parameterizedCron)\b")


def _github_triggers(on) -> list[str]:
    if isinstance(on, str):
        return [on]
    if isinstance(on, list):
        return [str(t) for t in on]
    if isinstance(on, dict):
        return [str(t) for t in on]
    return []


def _github_privileged(permissions) -> bool:
    if permissions == "write-all":
        return True
    if isinstance(permissions, dict):
        return any(str(scope) in GITHUB_PRIVILEGED_SCOPES and str(level) == "write"
                   for scope, level in permissions.items())
    return False


def parse_github_actions(path: str, text: str) -> Definition:
    docs = load_yaml_documents(path, text)
    if not docs or not isinstance(docs[0], dict):
        raise ParseError(f"{path}: a GitHub Actions workflow must be a mapping.")
    doc = docs[0]
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on:` key as True
    triggers = _github_triggers(on)
    permissions = doc.get("permissions")
    jobs = doc.get("jobs") or {}
    privileged = _github_privileged(permissions) or any(
        isinstance(job, dict) and _github_privileged(job.get("permissions")) for job in jobs.values())
    workflow = DefinitionWorkflow(
        key=path, name=str(doc.get("name") or path.rsplit("/", 1)[-1]), platform="GitHub Actions",
        kind="cicd_pipeline", triggers=triggers, unattended=bool(set(triggers) & GITHUB_UNATTENDED),
        secrets=unique(s for s in GITHUB_SECRET.findall(text) if s != "GITHUB_TOKEN"),
        permissions=permissions if permissions is not None else "default", privileged=privileged)
    if isinstance(on, dict) and isinstance(on.get("schedule"), list):
        workflow.triggers = [*triggers, *(f"cron {c.get('cron')}" for c in on["schedule"] if isinstance(c, dict))]
    return Definition(path=path, platform="GitHub Actions", workflows=[workflow])


def _gitlab_sources(job: dict) -> set[str]:
    sources: set[str] = set()
    for rule in job.get("rules") or []:
        condition = str(rule.get("if", "")) if isinstance(rule, dict) else ""
        sources.update(m.lower() for m in re.findall(r'CI_PIPELINE_SOURCE\s*==\s*["\'](\w+)["\']', condition))
        if "CI_COMMIT_BRANCH" in condition and "CI_DEFAULT_BRANCH" in condition:
            sources.add("push")
    only = job.get("only")
    if isinstance(only, list):
        sources.update(str(o).lower() for o in only)
    elif isinstance(only, dict):
        sources.update(str(o).lower() for o in only.get("refs") or [])
    elif isinstance(only, str):
        sources.add(only.lower())
    return sources


def _gitlab_secret_names(job: dict, variables: dict) -> set[str]:
    names: set[str] = set()
    for key in (job.get("secrets") or {}):
        names.add(str(key))
    text = " ".join(str(line) for part in ("script", "before_script", "after_script")
                    for line in (job.get(part) or []) if isinstance(job.get(part), list))
    names.update(v for v in VARIABLE_REFERENCE.findall(text) if SECRET_NAME.search(v) and v not in variables)
    return names


def parse_gitlab_ci(path: str, text: str) -> Definition:
    docs = load_yaml_documents(path, text)
    if not docs or not isinstance(docs[0], dict):
        raise ParseError(f"{path}: a GitLab CI file must be a mapping.")
    doc = docs[0]
    variables = doc.get("variables") if isinstance(doc.get("variables"), dict) else {}
    workflows = []
    for name, job in doc.items():
        if str(name) in GITLAB_KEYWORDS or str(name).startswith(".") or not isinstance(job, dict):
            continue
        if "script" not in job and "trigger" not in job:
            continue
        sources = _gitlab_sources(job)
        environment = job.get("environment")
        env_name = environment.get("name") if isinstance(environment, dict) else environment
        secrets = _gitlab_secret_names(job, {**variables, **(job.get("variables") or {})})
        secrets.update(str(k) for k in variables if SECRET_NAME.search(str(k)))
        workflows.append(DefinitionWorkflow(
            key=f"{path}#{name}", name=str(name), platform="GitLab CI", kind="cicd_pipeline",
            triggers=sorted(sources) or ["push"],
            unattended=bool(sources & GITLAB_UNATTENDED_SOURCES) or bool(env_name),
            secrets=sorted(secrets), privileged=bool(env_name and "prod" in str(env_name).lower())))
    return Definition(path=path, platform="GitLab CI", workflows=workflows)


def parse_jenkinsfile(path: str, text: str) -> Definition:
    if "pipeline" not in text and "node" not in text:
        raise ParseError(f"{path}: not a Jenkins pipeline (no pipeline or node block).")
    triggers = []
    for block in JENKINS_TRIGGERS.finditer(text):
        triggers += JENKINS_TRIGGER_WORDS.findall(block.group("body"))
    secrets = unique([*JENKINS_CREDENTIALS.findall(text), *JENKINS_CREDENTIALS_ID.findall(text)])
    name = path.rsplit("/", 1)[0] + "/Jenkinsfile" if "/" in path else "Jenkinsfile"
    workflow = DefinitionWorkflow(key=path, name=name, platform="Jenkins", kind="cicd_pipeline",
                                  triggers=unique(triggers), unattended=bool(triggers), secrets=secrets)
    return Definition(path=path, platform="Jenkins", workflows=[workflow])
