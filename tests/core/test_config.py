"""The inventory is validated strictly, and secrets never appear in errors or fingerprints."""

from __future__ import annotations

import pytest

from hipaacheck.config import json_schema, parse_inventory
from hipaacheck.errors import ConfigError

CANARY = "canary-Pa55w0rd-7Q"


def test_unknown_key_names_file_line_and_path_but_not_value():
    text = "postgres:\n  - name: a\n    application: {conninfo: x}\n    colour: " + CANARY + "\n"
    with pytest.raises(ConfigError) as err:
        parse_inventory(text, "inv.yaml")
    message = err.value.explain()
    assert "inv.yaml:4" in message and "postgres[0].colour" in message
    assert CANARY not in message


def test_bad_type_is_refused_without_echo():
    text = f"tls:\n  endpoints:\n    - {{name: a, host: h, port: '{CANARY}'}}\n"
    with pytest.raises(ConfigError) as err:
        parse_inventory(text, "inv.yaml")
    assert "tls.endpoints[0].port" in err.value.explain()
    assert CANARY not in err.value.explain()


def test_env_reference_becomes_a_redacting_secret():
    text = "postgres:\n  - name: a\n    application: {conninfo: 'host=h password=${PW}'}\n"
    inventory = parse_inventory(text, env={"PW": CANARY})
    conn = inventory.postgres[0].application
    assert CANARY in conn.libpq_conninfo()
    assert CANARY not in repr(inventory) and CANARY not in str(conn.conninfo)
    assert CANARY not in inventory.model_dump_json()
    assert CANARY not in inventory.fingerprint()


def test_missing_env_reference_is_a_config_error():
    text = "postgres:\n  - name: a\n    application: {conninfo: 'password=${NOPE_X}'}\n"
    with pytest.raises(ConfigError):
        parse_inventory(text, env={})


def test_targets_have_stable_ids():
    text = ("tls: {endpoints: [{name: portal, host: h, port: 443}]}\n"
            "aws: {accounts: [{name: prod, regions: [us-east-1]}]}\n"
            "logs: {sinks: [{name: app, paths: [/tmp/x.log]}]}\n")
    ids = [t.id for t in parse_inventory(text).targets()]
    assert ids == ["tls:portal", "aws:prod", "logs:app"]


def test_schema_and_example_are_valid():
    from importlib.resources import files

    assert json_schema()["title"] == "hipaacheck inventory"
    example = files("hipaacheck").joinpath("example.yaml").read_text()
    inventory = parse_inventory(example, env={"APP_DB_PASSWORD": "a", "AUDIT_DB_PASSWORD": "b"})
    assert inventory.targets()


def test_duplicate_keys_are_refused_with_their_line():
    text = "organization: A\ntls: {endpoints: []}\norganization: B\n"
    with pytest.raises(ConfigError) as err:
        parse_inventory(text, "inv.yaml")
    assert "inv.yaml:3: organization: duplicate key" in err.value.explain()


def test_missing_env_reference_names_the_file():
    text = "postgres:\n  - name: a\n    application: {conninfo: 'password=${NOPE_Y}'}\n"
    with pytest.raises(ConfigError) as err:
        parse_inventory(text, "inv.yaml", env={})
    assert err.value.explain().startswith("inv.yaml: postgres[0].application.conninfo")
