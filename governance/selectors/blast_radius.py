"""Blast radius of a workflow: what it touches, laid out as a graph for a server-side SVG.

Columns, left to right: the workflow, its credentials, the secret stores they live in, the systems
they open (plus the systems the workflow acts on). Positions are computed here, deterministically;
the template (templates/governance/includes/blast_radius.html) only draws. Two queries whatever the
number of bindings: the workflow's systems and one aggregate of the credentials' other bindings.
"""

from __future__ import annotations

from django.db.models import Count
from django.urls import reverse

from governance.models import Binding

NODE_WIDTH = 190
NODE_HEIGHT = 44
COLUMN_GAP = 70
ROW_GAP = 16
PADDING = 12
LABEL_MAX = 24

COLUMNS = ("workflow", "credential", "store", "system")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _node(kind: str, obj, url_name: str, *, flags=(), note: str = "") -> dict:
    label = str(obj)
    return {
        "id": f"{kind}-{obj.pk}", "kind": kind, "label": label, "short_label": _short(label),
        "url": reverse(url_name, args=[obj.pk]), "flags": list(flags), "note": note, "x": 0, "y": 0,
    }


def workflow_blast_radius(*, workflow, bindings) -> dict:
    """Nodes (id, kind, label, x, y, url, flags) and edges (from, to, label) plus the picture's size.

    ``bindings`` are the workflow's bindings the viewer may see, with credential__store and
    credential__system selected (governance.selectors.workflow_bindings). Reuse counts every other
    binding of the credential, visible or not: it is a number, not the other workflows' names.
    """
    credentials = list({b.credential_id: b.credential for b in bindings}.values())
    reuse = dict(
        Binding.objects.filter(credential__in=[c.pk for c in credentials])
        .exclude(workflow=workflow)
        .values("credential")
        .annotate(n=Count("pk"))
        .values_list("credential", "n")
    ) if credentials else {}

    nodes: dict[str, dict] = {}
    columns: dict[str, list[str]] = {kind: [] for kind in COLUMNS}
    edges: list[dict] = []

    def add(node: dict) -> str:
        if node["id"] not in nodes:
            nodes[node["id"]] = node
            columns[node["kind"]].append(node["id"])
        return node["id"]

    root = add(_node("workflow", workflow, "workflow-detail"))
    for credential in credentials:
        flags, notes = [], []
        shared = reuse.get(credential.pk, 0)
        if shared:
            flags.append("shared")
            notes.append(f"also bound to {_plural(shared, 'other workflow')}")
        if credential.store is None:
            flags.append("no-store")
            notes.append("in no secret store")
        cid = add(_node("credential", credential, "credential-detail", flags=flags, note="; ".join(notes)))
        nodes[cid]["shared_with"] = shared
        edges.append({"from": root, "to": cid, "label": "uses"})
        if credential.store is not None:
            store = credential.store
            managed = store.is_managed
            sid = add(_node("store", store, "secretstore-detail", flags=() if managed else ["unmanaged"],
                            note="" if managed else "unmanaged store"))
            edges.append({"from": cid, "to": sid, "label": "stored in"})
        yid = add(_node("system", credential.system, "system-detail"))
        edges.append({"from": cid, "to": yid, "label": "opens"})
    for system in workflow.systems.all():
        yid = add(_node("system", system, "system-detail"))
        edges.append({"from": root, "to": yid, "label": "acts on"})

    rows = max(len(ids) for ids in columns.values())
    height = 2 * PADDING + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP
    width = 2 * PADDING + len(COLUMNS) * NODE_WIDTH + (len(COLUMNS) - 1) * COLUMN_GAP
    for index, kind in enumerate(COLUMNS):
        ids = columns[kind]
        column_height = len(ids) * NODE_HEIGHT + max(len(ids) - 1, 0) * ROW_GAP
        top = PADDING + (height - 2 * PADDING - column_height) // 2
        for row, node_id in enumerate(ids):
            nodes[node_id]["x"] = PADDING + index * (NODE_WIDTH + COLUMN_GAP)
            nodes[node_id]["y"] = top + row * (NODE_HEIGHT + ROW_GAP)

    for edge in edges:
        edge["d"] = _path(nodes[edge["from"]], nodes[edge["to"]])

    counts = {kind: len(ids) for kind, ids in columns.items()}
    summary = (f"{workflow.name} touches {_plural(counts['credential'], 'credential')} in "
               f"{_plural(counts['store'], 'store')} and {_plural(counts['system'], 'system')}")
    return {
        "nodes": [nodes[node_id] for kind in COLUMNS for node_id in columns[kind]],
        "edges": edges, "width": width, "height": height, "node_width": NODE_WIDTH,
        "node_height": NODE_HEIGHT, "counts": counts, "summary": summary,
    }


def _path(source: dict, target: dict) -> str:
    """A cubic curve from the source's right edge to the target's left edge (SVG path data)."""
    x1, y1 = source["x"] + NODE_WIDTH, source["y"] + NODE_HEIGHT // 2
    x2, y2 = target["x"], target["y"] + NODE_HEIGHT // 2
    bend = max((x2 - x1) // 2, 30)
    return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
