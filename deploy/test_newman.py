"""The generated Postman collection, run by newman against a live gunicorn: every
request must answer a status its spec documents, and the auth flow must work."""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEWMAN = os.path.join(ROOT, "node_modules", ".bin", "newman")


@pytest.mark.skipif(not os.path.exists(NEWMAN), reason="needs `npm ci` (newman)")
def test_the_postman_collection_runs_clean(live, tmp_path):
    report = tmp_path / "newman.json"
    result = subprocess.run(
        [NEWMAN, "run", os.path.join(ROOT, "clients", "myapp.postman_collection.json")]
        + ["--env-var", f"baseUrl={live}", "--reporters", "cli,json"]
        + ["--reporter-json-export", str(report), "--color", "off"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["requests"]["total"] == 51 and stats["requests"]["failed"] == 0
    assert stats["assertions"]["failed"] == 0 and stats["assertions"]["total"] >= 51
