"""Hard-coded secrets in a file's text: detect-secrets' detectors plus Steward's own secret guard.

The scan hands back (line, detector, value) so that the caller can fingerprint the value (keyed HMAC) and
drop it at once; nothing here keeps, logs or returns a value beyond that call. A cheap pre-filter on the
whole text skips files with nothing that any detector could match, which is most files of a repository; in
ASCII text it is done with plain substring searches for literals every CANDIDATE match holds (anchors), and
only the lines holding one are tried against CANDIDATE (the same lines, several times faster).
Private key blocks are taken whole (header to footer), so two keys never share a fingerprint.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from governance.secret_guard import secret_spans

CANDIDATE = re.compile(
    r"(?i)pass|secret|token|api.?key|access.?key|auth|cred|bearer|private|-----BEGIN|://[^/\s:@]*:[^/\s@]+@"
    r"|(?-i:AKIA|ASIA|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|[sr]k_(?:live|test)_|sk-|AIza|eyJ|SG\.|npm_"
    r"|pypi-|AccountKey|AC[a-z0-9]{32}|SK[a-z0-9]{32}|\d{8,10}:AA|sq0csp-|hvs\.|hvb\.)")
PRIVATE_KEY = re.compile(r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----.*?-----END (?P=label)-----",
                         re.S)
# A reference, not a value: values the guard might still match inside templated CI text.
TEMPLATED = re.compile(r"\$\{\{|\{\{\s*|\$\(|\$\{[A-Za-z_]|<%=")
# In code, an assignment's right-hand side that is an expression (os.environ[...], getenv(...), cfg.get(...)).
EXPRESSION = re.compile(r"^[A-Za-z_][\w.]*[\[(]")
# An assignment whose key names a reference to a secret (credentialsId, password_file, token_env), not a secret.
ASSIGNED_KEY = re.compile(r"""([\w.-]+)['"]?\s*[:=]\s*['"]?$""")
REFERENCE_KEY = re.compile(r"(?i)(?:id|ids|name|names|file|path|variable|var|env|ref|type|url|header|length|size"
                           r"|policy|policies|mount|role|user|username|kind|ttl|field|key_?id)$")


@dataclass(frozen=True)
class SecretHit:
    line: int
    detector: str
    value: str  # in memory only: fingerprint it, then drop it

    def __repr__(self):  # never show the value, even in a traceback
        return f"SecretHit(line={self.line}, detector={self.detector!r})"


# Every CANDIDATE match in ASCII text holds one of these literals (the first ones in the lowered text, the
# others as written): finding them with str.find is many times faster than CANDIDATE's alternation on each line, and
# only the lines holding one are then tried against CANDIDATE itself, so what counts as a candidate is the same.
ANCHORS_ANY_CASE = ("pass", "secret", "token", "key", "auth", "cred", "bearer", "private", "-----begin", "://")
ANCHORS_CASED = ("AKIA", "ASIA", "gh", "github_pat_", "glpat-", "xox", "k_live_", "k_test_", "sk-", "AIza", "eyJ",
                 "SG.", "npm_", "pypi-", "AC", "SK", ":AA", "sq0csp-", "hvs.", "hvb.")
# Line breaks other than "\n" that str.splitlines() honours: with one of them the offsets below would drift.
OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _anchor_offsets(text: str) -> list[int] | None:
    """Where an anchor starts, or None when the fast path does not apply: text that is not ASCII (Unicode
    case folding matches more than lower() shows: a long s is an s to CANDIDATE) or has other line breaks."""
    if not text.isascii() or OTHER_BREAKS.search(text):
        return None
    lower = text.lower()
    offsets = []
    for haystack, words in ((lower, ANCHORS_ANY_CASE), (text, ANCHORS_CASED)):
        for word in words:
            index = haystack.find(word)
            while index != -1:
                offsets.append(index)
                index = haystack.find(word, index + 1)
    return offsets


def candidate_line_numbers(text: str) -> set[int] | None:
    offsets = _anchor_offsets(text)
    if offsets is None:
        return None
    starts = [0]
    index = text.find("\n")
    while index != -1:
        starts.append(index + 1)
        index = text.find("\n", index + 1)
    return {bisect.bisect_right(starts, offset) for offset in offsets}


def scan_text(text: str) -> list[SecretHit]:
    """Every hard-coded secret in the text, one hit per (line, value)."""
    anchored = candidate_line_numbers(text)
    if anchored is None:  # the slow path: the whole text against CANDIDATE, then each line
        if not CANDIDATE.search(text):
            return []
    elif not anchored:
        return []
    hits: list[SecretHit] = []
    blocks = []
    for match in PRIVATE_KEY.finditer(text):
        hits.append(SecretHit(text.count("\n", 0, match.start()) + 1, "a private key", match.group()))
        blocks.append((match.start(), match.end()))
    offset = 0
    for number, line in enumerate(text.splitlines(), start=1):
        start = offset
        offset += len(line) + 1
        if (anchored is not None and number not in anchored) or any(a <= start < b for a, b in blocks) \
                or not CANDIDATE.search(line):
            continue
        if len(line) > 4000:
            line = line[:4000]  # minified files: the guard's patterns stay linear, the tail is skipped
        seen = set()
        for detector, value in secret_spans(line):
            if value in seen or TEMPLATED.search(value) or detector == "a private key":
                continue
            if detector == "a secret assignment" and (EXPRESSION.match(value) or _names_a_reference(line, value)):
                continue
            seen.add(value)
            hits.append(SecretHit(number, detector, value))
    return hits


def _names_a_reference(line: str, value: str) -> bool:
    index = line.find(value)
    key = ASSIGNED_KEY.search(line[:index]) if index > 0 else None
    return bool(key and REFERENCE_KEY.search(key.group(1)))
