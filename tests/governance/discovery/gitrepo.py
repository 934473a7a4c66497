"""Git repositories for the discovery tests and the benchmark, written with dulwich's object store.

Fake secrets are assembled at run time from pieces, so that no scanner run over Steward's own source
finds a "secret" in it.
"""

from __future__ import annotations

from pathlib import Path

from dulwich.index import commit_tree
from dulwich.objects import Blob, Commit
from dulwich.repo import Repo

AUTHOR = b"Discovery Tests <tests@example.invalid>"


def fake_github_token(seed: str = "demo") -> str:
    return "gh" + "p_" + (f"FAKE0{seed}0" * 8)[:36]


def fake_password(seed: str = "demo") -> str:
    return f"Not-Real-{seed}-4821x"


def fake_private_key(seed: str = "demo") -> str:
    body = "\n".join(f"FAKEKEYDATA{seed}{n:04d}" * 3 for n in range(4))
    return "-----BEGIN " + "OPENSSH PRIVATE KEY-----\n" + body + "\n-----END " + "OPENSSH PRIVATE KEY-----\n"


def make_repo(path: Path, commits: list[dict[str, str | bytes | None]], *, bare: bool = False,
              start: int = 1_700_000_000) -> list[str]:
    """A repository whose history is these commits (each a change set: path -> content, None deletes).

    Returns the commit ids, oldest first; HEAD is the last.
    """
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo.init_bare(str(path)) if bare else Repo.init(str(path))
    files: dict[bytes, bytes] = {}
    parents: list[bytes] = []
    ids = []
    for number, changes in enumerate(commits):
        for name, content in changes.items():
            key = name.encode()
            if content is None:
                files.pop(key, None)
                continue
            blob = Blob.from_string(content if isinstance(content, bytes) else content.encode())
            repo.object_store.add_object(blob)
            files[key] = blob.id
        tree = commit_tree(repo.object_store, [(p, sha, 0o100644) for p, sha in sorted(files.items())])
        commit = Commit()
        commit.tree = tree
        commit.parents = parents
        commit.author = commit.committer = AUTHOR
        commit.author_time = commit.commit_time = start + number * 60
        commit.author_timezone = commit.commit_timezone = 0
        commit.encoding = b"UTF-8"
        commit.message = f"change {number}\n".encode()
        repo.object_store.add_object(commit)
        parents = [commit.id]
        ids.append(commit.id.decode())
    if parents:
        repo.refs[b"refs/heads/main"] = parents[0]
        repo.refs.set_symbolic_ref(b"HEAD", b"refs/heads/main")
    if not bare and parents:
        repo.get_worktree().reset_index() if hasattr(repo, "get_worktree") else repo.reset_index()
    repo.close()
    return ids

