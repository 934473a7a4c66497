"""A source repository (a local git repository, bare or not, through dulwich) or a plain directory.

Settings: {"path": "/srv/git/payments.git", "name": "payments" (how items name it; default the folder name),
"ref": "HEAD", "history_depth": STEWARD_DISCOVERY_HISTORY_DEPTH (commits of history scanned for secrets; 0:
none), "max_file_bytes": 1000000, "exclude": ["vendor/", "node_modules/"]}. No credential: the repository
is read from the local disk (a mirror the deployment keeps up to date).

What it reads: the files of the ref's tree (or the directory), parsed for CI/CD and infrastructure
definitions (parsers/), and every file scanned for hard-coded secrets; then, for history_depth commits, the
blobs each commit added or changed, scanned for secrets only. What it keeps: workflows with triggers that
run without a person and the secrets they reference (names), identities the definitions declare, and for
each hard-coded secret its keyed fingerprint, path, line, commit and detector: never the value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings as django_settings
from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.object_store import iter_tree_contents
from dulwich.objects import Blob, Tree
from dulwich.repo import Repo

from governance.discovery.fingerprint import fingerprint_key, secret_fingerprint
from governance.discovery.parsers import Definition, ParseError, definition_parser
from governance.discovery.parsers.secrets import scan_text
from governance.discovery.sources.base import Observed, Progress, SourceError, SourceMisconfigured, no_progress, setting
from governance.models.discovery import DiscoveredKind

SKIPPED_DIRS = {".git", "node_modules", ".venv", "__pycache__", ".tox", ".mypy_cache"}
BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".ico", ".pdf", ".zip", ".gz", ".tgz", ".jar", ".so", ".woff",
                   ".woff2", ".ttf", ".pyc", ".class", ".exe", ".dll", ".bin", ".lock")


@dataclass(frozen=True)
class RepositorySettings:
    path: str
    name: str
    ref: str = "HEAD"
    history_depth: int = 200
    max_file_bytes: int = 1_000_000
    exclude: list[str] = field(default_factory=list)

    @classmethod
    def from_source(cls, source) -> RepositorySettings:
        raw = dict(source.settings or {})
        path = str(raw.get("path") or "")
        if not path:
            raise SourceMisconfigured(f"Source {source.name}: settings need the repository's path.")
        return cls(path=path, name=setting(raw, "name", str, "") or Path(path.rstrip("/")).name.removesuffix(".git"),
                   ref=setting(raw, "ref", str, "HEAD"),
                   history_depth=setting(raw, "history_depth", int, django_settings.STEWARD_DISCOVERY_HISTORY_DEPTH),
                   max_file_bytes=setting(raw, "max_file_bytes", int, 1_000_000),
                   exclude=setting(raw, "exclude", list, []))


class TreeCache:
    """The object store for the history walk, keeping the trees it read: a commit's trees are its parent's,
    but for the folders it changed, so each tree is parsed once instead of once per commit that shows it."""

    def __init__(self, store, size: int = 20_000):
        self.store, self.size = store, size
        self.trees: dict[bytes, Tree] = {}

    def __getitem__(self, sha: bytes):
        cached = self.trees.get(sha)
        if cached is not None:
            return cached
        obj = self.store[sha]
        if isinstance(obj, Tree):
            if len(self.trees) >= self.size:
                self.trees.clear()  # a long walk: start again rather than hold every tree of the history
            self.trees[sha] = obj
        return obj


@dataclass
class ScanStats:
    files: int = 0
    definitions: int = 0
    history_blobs: int = 0
    commits: int = 0
    parse_errors: list[str] = field(default_factory=list)


class RepositorySource:
    def __init__(self, settings: RepositorySettings):
        self.settings = settings
        self.stats = ScanStats()
        self._key = fingerprint_key()
        self._secrets: dict[str, Observed] = {}
        # What the tree's blobs held (line, detector, fingerprint): the history walk meets most of them again
        # and records them without scanning them twice (it still dates each secret to an older commit).
        self._tree_hits: dict[bytes, list[tuple[int, str, str]]] = {}

    # Files ----------------------------------------------------------------------------------------
    def _skipped(self, path: str) -> bool:
        return path.lower().endswith(BINARY_SUFFIXES) or any(path.startswith(e) for e in self.settings.exclude)

    def _head_files(self) -> tuple[Iterator[tuple[str, bytes, bytes | None]], str, Repo | None]:
        root = self.settings.path
        if not os.path.isdir(root):
            raise SourceError(f"{root} is not a directory or repository on this host.")
        try:
            repo = Repo(root)
        except NotGitRepository:
            return self._directory_files(root), "", None
        try:
            commit = repo[repo.refs[self.settings.ref.encode()] if self.settings.ref != "HEAD" else repo.head()]
        except KeyError:
            raise SourceError(f"{self.settings.name}: the ref {self.settings.ref} does not exist (an empty "
                              "repository?).") from None

        def files():
            for entry in iter_tree_contents(repo.object_store, commit.tree):
                path = entry.path.decode("utf-8", "replace")
                if entry.mode & 0o170000 != 0o100000 or self._skipped(path):
                    continue  # submodules, symlinks, binaries
                blob = repo.object_store[entry.sha]
                yield path, blob.as_raw_string(), entry.sha
        return files(), commit.id.decode(), repo

    def _directory_files(self, root: str) -> Iterator[tuple[str, bytes, bytes | None]]:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(names):
                full = os.path.join(folder, name)
                path = os.path.relpath(full, root).replace(os.sep, "/")
                if self._skipped(path) or not os.path.isfile(full) or os.path.islink(full):
                    continue
                if os.path.getsize(full) > self.settings.max_file_bytes:
                    continue
                with open(full, "rb") as handle:
                    yield path, handle.read(), None

    def _text(self, data: bytes) -> str | None:
        if len(data) > self.settings.max_file_bytes or b"\0" in data[:8192]:
            return None
        return data.decode("utf-8", "replace")

    # Observations ---------------------------------------------------------------------------------
    def observe(self, progress: Progress = no_progress) -> Iterator[Observed]:
        files, head, repo = self._head_files()
        for path, data, sha in files:
            text = self._text(data)
            if text is None:
                continue
            self.stats.files += 1
            yield from self._definitions(path, text, head)
            hits = self._secrets_in(path, text, commit=head, in_head=True)
            if sha is not None:
                self._tree_hits[sha] = hits
            if self.stats.files % 1000 == 0:
                progress(f"{self.settings.name}: {self.stats.files} files", files=self.stats.files)
        if repo is not None and self.settings.history_depth > 0:
            self._history(repo, progress)
        yield from self._secrets.values()

    def _definitions(self, path: str, text: str, commit: str) -> Iterator[Observed]:
        parser = definition_parser(path, text)
        if parser is None:
            return
        try:
            definition: Definition = parser(path, text)
        except ParseError as error:
            self.stats.parse_errors.append(str(error)[:300])
            return
        self.stats.definitions += 1
        repository = self.settings.name
        for workflow in definition.workflows:
            if not workflow.unattended:
                continue
            yield Observed(
                kind=DiscoveredKind.WORKFLOW, natural_key=workflow.key, name=f"{repository}: {workflow.name}"[:300],
                facts={"repository": repository, "path": path, "platform": workflow.platform,
                       "workflow_kind": workflow.kind, "triggers": workflow.triggers, "secrets": workflow.secrets,
                       "permissions": workflow.permissions, "identities": workflow.identities, "commit": commit},
                privileged=workflow.privileged)
        for identity in definition.identities:
            kind = (DiscoveredKind.SERVICE_ACCOUNT if identity.type == "Kubernetes ServiceAccount"
                    else DiscoveredKind.IAC_IDENTITY)
            yield Observed(kind=kind, natural_key=identity.key, name=f"{repository}: {identity.name}"[:300],
                           facts={"repository": repository, "path": path, "type": identity.type, "commit": commit,
                                  "identity": identity.name, **identity.facts},
                           privileged=identity.privileged)
        for line, detector, value in definition.embedded_secrets:
            self._secret(path, line, detector, value, commit=commit, in_head=True)

    def _secrets_in(self, path: str, text: str, *, commit: str, in_head: bool) -> list[tuple[int, str, str]]:
        """Record the file's secrets; returns them as (line, detector, fingerprint), never a value."""
        found = []
        for hit in scan_text(text):
            fingerprint = secret_fingerprint(hit.value, key=self._key)
            self._record(path, hit.line, hit.detector, fingerprint, commit=commit, in_head=in_head)
            found.append((hit.line, hit.detector, fingerprint))
        return found

    def _secret(self, path: str, line: int, detector: str, value: str, *, commit: str, in_head: bool) -> None:
        self._record(path, line, detector, secret_fingerprint(value, key=self._key), commit=commit, in_head=in_head)

    def _record(self, path: str, line: int, detector: str, fingerprint: str, *, commit: str, in_head: bool) -> None:
        key = f"{path}:{fingerprint[:32]}"
        known = self._secrets.get(key)
        if known is not None:
            if not in_head and commit:  # walking back: the older commit that still has it
                known.facts["commit"] = commit
            return
        self._secrets[key] = Observed(
            kind=DiscoveredKind.HARD_CODED_SECRET, natural_key=key,
            name=f"{self.settings.name}: {path}:{line}"[:300], fingerprint=fingerprint,
            facts={"repository": self.settings.name, "path": path, "line": line, "commit": commit,
                   "detector": detector, "in_head": in_head, "found_in": "tree" if in_head else "history"})

    def _history(self, repo: Repo, progress: Progress) -> None:
        seen_blobs: set[bytes] = set()
        trees = TreeCache(repo.object_store)
        try:
            walker = repo.get_walker(max_entries=self.settings.history_depth)
        except KeyError:
            return
        for entry in walker:
            commit = entry.commit
            self.stats.commits += 1
            parent_tree = repo[commit.parents[0]].tree if commit.parents else None
            for change in tree_changes(trees, parent_tree, commit.tree):
                new = change.new
                if new is None or new.sha is None or new.sha in seen_blobs or (new.mode or 0) & 0o170000 != 0o100000:
                    continue
                seen_blobs.add(new.sha)
                path = new.path.decode("utf-8", "replace")
                if self._skipped(path):
                    continue
                known = self._tree_hits.get(new.sha)
                if known is not None:
                    self.stats.history_blobs += 1
                    for line, detector, fingerprint in known:
                        self._record(path, line, detector, fingerprint, commit=commit.id.decode(), in_head=False)
                    continue
                blob = repo.object_store[new.sha]
                if not isinstance(blob, Blob):
                    continue
                text = self._text(blob.as_raw_string())
                if text is None:
                    continue
                self.stats.history_blobs += 1
                self._secrets_in(path, text, commit=commit.id.decode(), in_head=False)
            if self.stats.commits % 100 == 0:
                progress(f"{self.settings.name}: {self.stats.commits} commits of history", commits=self.stats.commits)
