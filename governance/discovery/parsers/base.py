"""What a definition parser returns: the workflows (unattended automation) and identities a file declares."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

UNATTENDED = "unattended"


class ParseError(ValueError):
    """The file is not valid for its kind; the reason names the file, never its content."""


@dataclass
class DefinitionWorkflow:
    key: str  # stable within the file: the file itself, or file#job
    name: str
    platform: str
    kind: str  # governance.choices.WorkflowKind
    triggers: list[str] = field(default_factory=list)
    unattended: bool = False  # a trigger runs it without a person (schedule, dispatch by API, upstream, service)
    secrets: list[str] = field(default_factory=list)  # names of the secrets it references, never values
    permissions: dict | str | None = None
    privileged: bool = False
    identities: list[str] = field(default_factory=list)  # service accounts it runs as


@dataclass
class DefinitionIdentity:
    key: str
    name: str
    type: str  # kubernetes ServiceAccount, aws_iam_access_key, ansible user ...
    privileged: bool = False
    facts: dict = field(default_factory=dict)


@dataclass
class Definition:
    path: str
    platform: str
    workflows: list[DefinitionWorkflow] = field(default_factory=list)
    identities: list[DefinitionIdentity] = field(default_factory=list)
    embedded_secrets: list[tuple[int, str, str]] = field(default_factory=list)  # (line, kind, value) to fingerprint


def load_yaml_documents(path: str, text: str) -> list:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ParseError(f"{path}: not valid YAML{where}.") from None


def unique(items) -> list[str]:
    return sorted({str(i) for i in items if i})
