"""`report bundle`, `keygen`, `sign` and `verify` through the CLI: tampering is caught."""

from __future__ import annotations

from typer.testing import CliRunner

from hipaacheck.cli import app

runner = CliRunner()


def test_signed_bundle_verifies_and_tampering_is_caught(tmp_path):
    # Given a real scan's JSON result of a leaky log file
    log = tmp_path / "app.log"
    log.write_text('2026-12-03T10:00:00Z INFO patient {"ssn": "524-71-3390"}\n')
    config = tmp_path / "hipaacheck.yaml"
    config.write_text(f"logs: {{sinks: [{{name: app, paths: ['{log}']}}]}}\n")
    scanned = runner.invoke(app, ["scan", "-c", str(config), "--out", str(tmp_path / "scan"),
                                  "-f", "json", "--no-history"])
    assert scanned.exit_code == 1, scanned.output
    result_json = tmp_path / "scan" / "report.json"
    bundle, private, public = tmp_path / "bundle", tmp_path / "k.pem", tmp_path / "k.pub"

    # When it is bundled and signed
    assert runner.invoke(app, ["report", "bundle", str(result_json), "--out", str(bundle),
                               "--assessor", "A. Auditor"]).exit_code == 0
    assert runner.invoke(app, ["report", "keygen", str(private), str(public)]).exit_code == 0
    assert runner.invoke(app, ["report", "sign", str(bundle), "--key", str(private)]).exit_code == 0

    # Then it verifies with the public key, and an edited report no longer does
    verified = runner.invoke(app, ["report", "verify", str(bundle), "--key", str(public)])
    assert verified.exit_code == 0 and "signature valid" in verified.stdout
    html = bundle / "report.html"
    html.write_text(html.read_text().replace("FAIL", "PASS"))
    assert runner.invoke(app, ["report", "verify", str(bundle), "--key",
                               str(public)]).exit_code == 1
    # And `report FILE` still renders without a subcommand
    rendered = runner.invoke(app, ["report", str(result_json), "-f", "md",
                                   "--out", str(tmp_path / "md")])
    assert rendered.exit_code == 0 and (tmp_path / "md" / "report.md").exists()
