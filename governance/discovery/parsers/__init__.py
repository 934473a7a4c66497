"""Parsers of CI/CD and infrastructure definitions: a file's text in, the workflows and identities it declares out.

Each parser is a plain function of (path, text) with its own fixtures in tests/governance/discovery/;
none touches the network or the database. definition_parser(path, text) picks the parser for a file.
"""

from __future__ import annotations

from collections.abc import Callable

from governance.discovery.parsers.base import Definition, DefinitionIdentity, DefinitionWorkflow, ParseError
from governance.discovery.parsers.ci import parse_github_actions, parse_gitlab_ci, parse_jenkinsfile
from governance.discovery.parsers.infra import (
    looks_like_ansible,
    looks_like_kubernetes,
    parse_ansible,
    parse_compose,
    parse_crontab,
    parse_kubernetes,
    parse_terraform,
)

Parser = Callable[[str, str], Definition]

__all__ = ["Definition", "DefinitionIdentity", "DefinitionWorkflow", "ParseError", "definition_parser"]

YAML_SUFFIXES = (".yml", ".yaml")


def definition_parser(path: str, text: str | None = None) -> Parser | None:
    """The parser for this file, from its path (and, for plain YAML, a glance at its text); None: not a definition."""
    lower = path.lower()
    name = lower.rsplit("/", 1)[-1]
    if lower.startswith(".github/workflows/") or "/.github/workflows/" in lower:
        return parse_github_actions if lower.endswith(YAML_SUFFIXES) else None
    if name in (".gitlab-ci.yml", ".gitlab-ci.yaml") or lower.endswith(".gitlab-ci.yml"):
        return parse_gitlab_ci
    if name == "jenkinsfile" or name.endswith(".jenkinsfile") or name.startswith("jenkinsfile."):
        return parse_jenkinsfile
    if name in ("crontab", "cron") or name.endswith((".cron", ".crontab")) or "/cron.d/" in f"/{lower}":
        return parse_crontab
    if name.endswith(".tf"):
        return parse_terraform
    if name.startswith(("docker-compose", "compose.")) and name.endswith(YAML_SUFFIXES):
        return parse_compose
    if name.endswith(YAML_SUFFIXES) and text is not None:
        if looks_like_kubernetes(text):
            return parse_kubernetes
        if looks_like_ansible(text):
            return parse_ansible
    return None
