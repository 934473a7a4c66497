"""The inventory report: every workflow with its four governance items (governance.selectors)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from governance.audit import Actor
from governance.models import Workflow
from governance.selectors import workflow_governance_record
from tests.reports.conftest import compact, pdf_text, read_pdf, run_report

pytestmark = pytest.mark.django_db


@pytest.mark.embedded
def test_inventory_lists_every_workflow_with_its_governance_record(personas, estate):
    Workflow.objects.filter(pk=estate["workflow"].pk).update(shutdown_procedure="Stop the runner",
                                                             kill_switch_steps="Revoke the deploy key")
    job = run_report(Actor.for_user(personas.auditor), "inventory", {})
    assert job.status == "succeeded", job.error
    reader, _ = read_pdf(job)
    assert set(reader.attachments) == {"inventory.json", "inventory.csv"}
    rows = list(csv.DictReader(io.StringIO(reader.attachments["inventory.csv"][0].decode())))
    assert [r["name"] for r in rows] == list(Workflow.objects.order_by("name").values_list("name", flat=True))
    data = json.loads(reader.attachments["inventory.json"][0])
    for workflow in Workflow.objects.all():
        expected = workflow_governance_record(workflow=workflow, bindings=list(workflow.bindings.all()))
        listed = next(w for w in data["workflows"] if w["workflow_id"] == workflow.pk)
        assert listed["items"] == expected
    assert data["summary"]["workflows"] == Workflow.objects.count()
    text = pdf_text(reader)
    assert all(compact(w.name) in text for w in Workflow.objects.all())
    assert compact("Shutdown procedure") in text


def test_inventory_queries_do_not_grow_with_the_workflows(personas, estate, tmp_path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reports import builders
    from reports.parameters import normalise_parameters
    from tests.factories import BindingFactory, WorkflowFactory

    params = normalise_parameters("inventory", {})
    counts = []
    for n in (1, 8):
        for _ in range(n):
            BindingFactory(workflow=WorkflowFactory(owner=personas.owner, team=personas.team))
        workdir = tmp_path / str(n)
        workdir.mkdir()
        with CaptureQueriesContext(connection) as queries:
            builders.build("inventory", params, requester="test", workdir=workdir)
        counts.append(len(queries))
    assert counts[0] == counts[1]
