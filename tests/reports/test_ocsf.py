"""OCSF output validates against the OCSF 1.6.0 Compliance Finding schema, status by status."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from hipaacheck.model import Status
from hipaacheck.render.ocsf import CLASS_UID, OCSF_VERSION, TYPE_UID, render_ocsf

EXPECTED = {Status.PASS: 1, Status.FAIL: 3, Status.UNVERIFIED: 2, Status.WARN: 99,
            Status.ERROR: 99}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """A validator of the Compliance Finding class, from the schema the package ships."""
    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=OCSF_VERSION))
    schema = ocsf.get_class_schema(
        class_name=ocsf.lookup_class_name_from_uid(class_uid=CLASS_UID), profiles=[])
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_every_event_validates_against_the_class_schema(result, validator):
    events = json.loads(render_ocsf(result))
    assert len(events) == len(result.findings)
    for event in events:
        validator.validate(event)
        assert (event["class_uid"], event["type_uid"]) == (CLASS_UID, TYPE_UID)


def test_a_schema_violation_is_caught(result, validator):
    event = json.loads(render_ocsf(result))[0]
    del event["finding_info"]
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(event)


def test_compliance_status_follows_the_finding(result):
    events = json.loads(render_ocsf(result))
    for event, f in zip(events, result.findings):
        assert event["compliance"]["status_id"] == EXPECTED[f.status]
        assert event["unmapped"]["hipaacheck"]["status"] == f.status.value
        assert event["compliance"]["requirements"] == [f"45 CFR {c}" for c in f.citations]
    unverified = next(e for e, f in zip(events, result.findings)
                      if f.status is Status.UNVERIFIED and f.needs)
    assert unverified["unmapped"]["hipaacheck"]["needs"]
