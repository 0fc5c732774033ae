"""myapp past one machine, on real parts: a load balancer (nginx), three app hosts
(sshd, nginx, two uWSGI slots each), a database host (PostgreSQL behind PgBouncer
in transaction pooling mode) and Redis with a replica and three Sentinels, each a
network namespace of this machine (deploy/fleet.py). deploy/deploy.sh ships to
the app hosts over ssh. Under a steady mixed load through the balancer
(deploy/load.py) the test rolls releases, fails one, adds a column, restarts
PgBouncer, kills the Redis primary and kills an app host, and counts what the
clients saw. FLEET_RESULTS=<file> writes those counts as JSON.

Needs root and Debian's nginx, openssh-server, postgresql, pgbouncer,
redis-server, redis-sentinel, rsync and curl (.ci/run installs them); `make
fleet-test` runs it."""

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests

from deploy import fleet
from deploy.load import BORROW, READ, SIGNED_IN_READ, WRITE, Load
from deploy.sources import added_column_copy, broken_copy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEEDED = (
    "ip",
    "nsenter",
    "nginx",
    "/usr/sbin/sshd",
    "pgbouncer",
    "redis-server",
    "redis-sentinel",
    "rsync",
    "curl",
    f"{fleet.POSTGRES_BIN}/postgres",
)
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in NEEDED),
    reason="needs root and " + ", ".join(NEEDED),
)
APP_HOSTS = ("app1", "app2", "app3")
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@fleet.example", "a fleet admin password"
RESULTS: dict[str, dict] = {}


class Fleet:
    """The fleet of this test and what it needs to drive it."""

    def __init__(self, directory: str):
        os.chmod(directory, 0o755)  # PostgreSQL runs as postgres in here
        self.net = fleet.Fleet(directory)
        self.hosts = {
            name: self.net.add(name)
            for name in ("lb", *APP_HOSTS, "db", "redis1", "redis2")
        }
        self.lb = self.hosts["lb"]
        self.base = f"http://{self.lb.address}"
        self.key = os.path.join(directory, "deploy_key")
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key], check=True
        )

    def start(self) -> None:
        password = secrets.token_urlsafe(16)
        db, redis1, redis2 = (self.hosts[n] for n in ("db", "redis1", "redis2"))
        fleet.start_postgres(db, password)
        fleet.start_pgbouncer(db, password)
        fleet.start_redis(redis1)
        fleet.start_redis(redis2, replica_of=redis1)
        for host in (db, redis1, redis2):
            fleet.start_sentinel(host, primary=redis1)
        sentinels = ",".join(f"{h.address}:26379" for h in (db, redis1, redis2))
        env = (
            "MYAPP_ENV=production\n"
            f"SECRET_KEY={secrets.token_urlsafe(48)}\n"
            f"JWT_SECRET_KEY={secrets.token_urlsafe(48)}\n"
            f"DATABASE_URL=postgresql://myapp:{password}@{db.address}:6432/myapp\n"
            "DATABASE_TRANSACTION_POOLER=true\n"
            f"REDIS_URL=redis+sentinel://{sentinels}/myapp/0\n"
            f"PUBLIC_BASE_URL={self.base}\n"
            "TRUSTED_PROXIES=2\n"
            "WEB_CONCURRENCY=2\n"
            "RATELIMIT_DEFAULT=1000000/hour\n"
            "RATELIMIT_REGISTER=1000000/hour\n"
        )
        with open(os.path.join(ROOT, "deploy", "nginx", "myapp.conf")) as shipped:
            site = shipped.read().replace(
                "server_name api.example.com;", f"server_name {self.lb.address};"
            )
        with open(self.key + ".pub") as handle:
            public_key = handle.read()
        # The app hosts' package mirror: the wheels of requirements.txt, built
        # here (the namespaces reach no index).
        wheels = os.path.join(self.net.directory, "wheels")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "-w",
                wheels,
                "-r",
                os.path.join(ROOT, "requirements.txt"),
            ],
            check=True,
            capture_output=True,
        )
        pip = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": wheels}
        for name in APP_HOSTS:
            host = self.hosts[name]
            self.write(host, "/etc/myapp/env", env)
            self.write(
                host, "/srv/myapp/upstream.conf", "server unix:/run/myapp/a.sock;\n"
            )
            fleet.start_sshd(host, public_key, pip)
            self.start_nginx(host, site)
        with open(os.path.join(ROOT, "deploy", "nginx", "balancer.conf")) as shipped:
            balancer = shipped.read().replace(
                "server_name api.example.com;", f"server_name {self.lb.address};"
            )
        for number, name in enumerate(APP_HOSTS, start=11):
            balancer = balancer.replace(
                f"10.0.0.{number}:80", f"{self.hosts[name].address}:80"
            )
        self.start_nginx(self.lb, balancer)

    @staticmethod
    def write(host: fleet.Host, path: str, text: str) -> None:
        """A file at `path` as the host sees it (its /srv, /etc/myapp are its own)."""
        for private in fleet.PRIVATE_DIRS:
            if path.startswith(private + "/"):
                own = private.strip("/").replace("/", "-")
                real = os.path.join(host.root, own, path[len(private) + 1 :])
                os.makedirs(os.path.dirname(real), exist_ok=True)
                with open(real, "w") as handle:
                    handle.write(text)
                return
        raise ValueError(path)

    @staticmethod
    def start_nginx(host: fleet.Host, site: str) -> None:
        """nginx whose files are at /srv/nginx on the host, so one reload command
        (NGINX_RELOAD) serves every host."""
        directory = os.path.join(host.root, "nginx")
        fleet.start_nginx(host, site, directory)
        os.symlink(directory, os.path.join(host.root, "srv", "nginx"))

    def deploy(self, source: str = ROOT, **env):
        slot = (
            "{ROOT}/deploy/slot-supervisor.sh {action} $slot"
            " /srv/myapp /run/myapp /etc/myapp/env"
        )
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "DEPLOY_HOSTS": " ".join(self.hosts[name].address for name in APP_HOSTS),
            "DEPLOY_USER": "root",
            "DEPLOY_PATH": "/srv/myapp",
            "SSH_OPTIONS": f"-i {self.key} -o StrictHostKeyChecking=no "
            "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
            "PYTHON": getattr(sys, "_base_executable", sys.executable),
            "SLOT_START": slot.format(ROOT=ROOT, action="start"),
            "SLOT_STOP": slot.format(ROOT=ROOT, action="stop"),
            "NGINX_RELOAD": "nginx -c /srv/nginx/nginx.conf -p /srv/nginx -s reload",
            "SMOKE_SECONDS": "20",
            "DRAIN_SECONDS": "1",
            **env,
        }
        return subprocess.run(
            ["bash", os.path.join(source, "deploy", "deploy.sh")],
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )

    def ssh(self, name: str, script: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                "ssh",
                "-i",
                self.key,
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                f"root@{self.hosts[name].address}",
                script,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def releases(self) -> set[str]:
        """The release each app host serves (its `current`)."""
        return {
            self.ssh(name, "readlink /srv/myapp/current").stdout.strip()
            for name in APP_HOSTS
            if self.hosts[name].processes
        }

    def host_url(self, name: str) -> str:
        return f"http://{self.hosts[name].address}"

    def close(self) -> None:
        self.net.close()


@pytest.fixture(scope="module")
def the_fleet():
    directory = tempfile.mkdtemp(prefix="myapp-fleet-")
    built = Fleet(directory)
    try:
        built.start()
        first = built.deploy()
        assert first.returncode == 0, first.stderr
        made = built.ssh(
            "app1",
            "cd /srv/myapp/current && set -a && . /etc/myapp/env && set +a && "
            f"echo '{ADMIN_PASSWORD}' | .venv/bin/flask --app myapp users "
            f"create-admin {ADMIN_EMAIL} --password-stdin",
        )
        assert made.returncode == 0, made.stderr
        yield built
    finally:
        built.close()
        if os.environ.get("FLEET_KEEP"):  # its logs, to read after a failure
            print("fleet files kept in", directory)
        else:
            shutil.rmtree(directory, ignore_errors=True)
        if os.environ.get("FLEET_RESULTS"):
            with open(os.environ["FLEET_RESULTS"], "w") as handle:
                json.dump(RESULTS, handle, indent=2)


@pytest.fixture(scope="module")
def admin(the_fleet):
    signed_in = requests.post(
        f"{the_fleet.base}/users/tokens",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    assert signed_in.status_code == 201, signed_in.text
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


@pytest.fixture(scope="module")
def book(the_fleet, admin):
    from myapp.testing import book_body

    made = requests.post(
        f"{the_fleet.base}/books/", json=book_body(copies_total=1000), headers=admin
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def under_load(the_fleet, admin, book, name, fault, settle=2.0):
    """Run `fault` while the load runs through the balancer; record and return
    the load (what the clients saw)."""
    token = admin["Authorization"].split()[1]
    with Load(the_fleet.base, token, book, threads=4) as load:
        time.sleep(settle)
        started = time.monotonic()
        detail = fault() or {}
        ended = time.monotonic()
        time.sleep(settle)
    RESULTS[name] = {
        "requests": len(load.outcomes),
        "failed": {
            kind: len(load.failures(kind))
            for kind in (READ, SIGNED_IN_READ, BORROW, WRITE)
        },
        "answers": load.summary(),
        "fault_seconds": round(ended - started, 1),
        **detail,
    }
    print(name, json.dumps(RESULTS[name], indent=1))
    # Recovered without a restart: nothing fails once the fault is over.
    late = [o for o in load.failures() if o.started > ended + 1]
    assert not late, RESULTS[name]
    return load


def test_every_host_serves_and_shares_sessions_and_limits(the_fleet):
    hosts = [the_fleet.host_url(name) for name in APP_HOSTS]
    host_header = {"Host": the_fleet.lb.address}
    for url in hosts + [the_fleet.base]:
        assert requests.get(f"{url}/readiness", headers=host_header).status_code == 200
    email = f"shared-{secrets.token_hex(4)}@example.com"
    body = {"email": email, "password": "a shared password", "name": "S"}
    assert requests.post(f"{hosts[0]}/users/", json=body, headers=host_header).ok
    tokens = requests.post(
        f"{hosts[0]}/users/tokens",
        json={"email": email, "password": body["password"]},
        headers=host_header,
    ).json()
    signed_in = {**host_header, "Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(f"{hosts[1]}/users/me", headers=signed_in).status_code == 200
    # Signed out on one host, the token is refused on the others at once.
    assert requests.delete(f"{hosts[2]}/users/tokens/current", headers=signed_in).ok
    for url in hosts:
        assert requests.get(f"{url}/users/me", headers=signed_in).status_code == 401
    # The sign-in limit (5 attempts a minute per address and account, the one
    # above included) counts across hosts.
    wrong = {"email": email, "password": "not the password"}
    statuses = [
        requests.post(
            f"{hosts[n % 3]}/users/tokens", json=wrong, headers=host_header
        ).status_code
        for n in range(7)
    ]
    assert statuses == [401] * 4 + [429] * 3


PROBE = """
import sqlalchemy
from myapp import create_app
from myapp.db import sql
with create_app().app_context():
    print(sql.session.execute(sqlalchemy.text("SHOW statement_timeout")).scalar_one())
    try:
        sql.session.execute(sqlalchemy.text("SELECT pg_sleep(4)"))
    except sqlalchemy.exc.OperationalError as error:
        print(type(error.orig).__name__)
"""


def test_the_roles_timeouts_hold_through_pgbouncer(the_fleet):
    """Through a transaction pooler the app sends no startup options: the
    timeouts are the role's, and still cancel a statement."""
    probe = the_fleet.ssh(
        "app1",
        "cd /srv/myapp/current && set -a && . /etc/myapp/env && set +a && "
        f".venv/bin/python -c {shlex.quote(PROBE)}",
    )
    assert probe.stdout.split() == ["2s", "QueryCanceled"], probe.stderr


def test_a_rolling_deploy_loses_no_request(the_fleet, admin, book):
    before = the_fleet.releases()
    outcome = {}

    def deploy():
        outcome["run"] = the_fleet.deploy()

    load = under_load(the_fleet, admin, book, "rolling deploy", deploy)
    assert outcome["run"].returncode == 0, outcome["run"].stderr
    after = the_fleet.releases()
    assert len(after) == 1 and after != before  # one new release everywhere
    assert len(load.outcomes) > 200 and not load.failures(), load.summary()


def test_a_failed_deploy_rolls_back_and_loses_no_request(
    the_fleet, admin, book, tmp_path
):
    before = the_fleet.releases()
    source = broken_copy(str(tmp_path))
    outcome = {}

    def deploy():
        outcome["run"] = the_fleet.deploy(source=source, SMOKE_SECONDS="5")

    load = under_load(the_fleet, admin, book, "failed deploy", deploy)
    assert outcome["run"].returncode == 1
    assert "rolled back" in outcome["run"].stderr
    assert the_fleet.releases() == before  # the whole fleet on one release
    assert not load.failures(), load.summary()


def test_an_added_column_is_backward_compatible(the_fleet, admin, book, tmp_path):
    """The migration runs while the previous release serves every host; that
    release keeps writing the table the column was added to."""
    source = added_column_copy(str(tmp_path))
    outcome = {}

    def deploy():
        outcome["run"] = the_fleet.deploy(source=source)

    load = under_load(the_fleet, admin, book, "deploy adding a column", deploy)
    assert outcome["run"].returncode == 0, outcome["run"].stderr
    assert not load.failures(), load.summary()
    assert any(o.kind == WRITE and o.status == 201 for o in load.outcomes)


@pytest.mark.skipif(not shutil.which("wrk"), reason="needs wrk")
def test_throughput_from_one_to_three_hosts(the_fleet):
    """Catalog reads through the balancer with 1, 2 and 3 app hosts in its
    upstream (wrk, 10 s each): recorded for the README, not asserted, as every
    host here shares this machine's 2 cores with the balancer, the database and
    the load itself."""
    site = os.path.join(the_fleet.lb.root, "nginx", "site.conf")
    with open(site) as handle:
        full = handle.read()
    addresses = [the_fleet.hosts[name].address for name in APP_HOSTS]
    measured = {}
    try:
        for count in (1, 2, 3):
            lines = [
                line
                for line in full.splitlines()
                if not any(f"{a}:80" in line for a in addresses[count:])
            ]
            with open(site, "w") as handle:
                handle.write("\n".join(lines) + "\n")
            the_fleet.lb.run(
                ["nginx", "-c", f"{the_fleet.lb.root}/nginx/nginx.conf", "-s", "reload"]
            )
            time.sleep(1)
            run = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    "-c16",
                    "-d10s",
                    "-H",
                    f"Host: {the_fleet.lb.address}",
                    f"{the_fleet.base}/books/?per_page=5",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            assert "Non-2xx" not in run.stdout, run.stdout
            rate = float(run.stdout.split("Requests/sec:")[1].split()[0])
            measured[f"{count} host{'s' if count > 1 else ''}"] = round(rate)
    finally:
        with open(site, "w") as handle:
            handle.write(full)
        the_fleet.lb.run(
            ["nginx", "-c", f"{the_fleet.lb.root}/nginx/nginx.conf", "-s", "reload"]
        )
    RESULTS["throughput (catalog reads/s)"] = measured
    print("throughput", measured)


def test_pgbouncer_restarted(the_fleet, admin, book):
    db = the_fleet.hosts["db"]

    def restart():
        db.stop("pgbouncer")
        fleet.run_pgbouncer(db)

    load = under_load(the_fleet, admin, book, "PgBouncer restarted", restart)
    # Reads wait out the gap (transactions.read_on_a_live_connection); a write
    # that met it was answered 503, and its retry completed it.
    assert not load.failures(READ) and not load.failures(SIGNED_IN_READ)


def test_pgbouncer_restarted_online(the_fleet, admin, book):
    """The restart an operator should use: the new process takes the old one's
    sockets over, so no client sees it."""
    db = the_fleet.hosts["db"]

    def restart_online():
        replaced = db.processes["pgbouncer"]
        fleet.run_pgbouncer(db, online=True)
        replaced.wait(timeout=30)  # the old process hands over and exits

    load = under_load(
        the_fleet, admin, book, "PgBouncer restarted online", restart_online
    )
    assert not load.failures(), load.summary()


def test_an_app_host_killed(the_fleet, admin, book):
    app2 = the_fleet.hosts["app2"]

    def kill_host():
        """kill -9 of its uWSGI, then, a few seconds on, of everything it runs."""
        for pid in app2.pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"uwsgi" in cmdline.read():
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass  # it ended meanwhile
        time.sleep(3)
        app2.kill_everything()

    load = under_load(the_fleet, admin, book, "app host killed", kill_host)
    assert not load.failures(READ) and not load.failures(SIGNED_IN_READ), load.summary()
    # Every write completed exactly once: each account made is there once.
    for email in load.written[:20]:
        taken = requests.post(
            f"{the_fleet.base}/users/",
            json={"email": email, "password": "another password", "name": "L"},
        )
        assert taken.status_code == 409


def test_the_redis_primary_killed(the_fleet, admin, book):
    redis1 = the_fleet.hosts["redis1"]

    def kill_primary():
        redis1.stop("redis", signal.SIGKILL)
        killed = time.monotonic()
        while True:  # until a signed-in read (its session is in Redis) works
            read = requests.get(f"{the_fleet.base}/users/me", headers=admin)
            if read.status_code == 200:
                return {"recovery_seconds": round(time.monotonic() - killed, 1)}
            assert time.monotonic() - killed < 60, read.text
            time.sleep(0.1)

    under_load(the_fleet, admin, book, "Redis primary killed", kill_primary)
    assert RESULTS["Redis primary killed"]["recovery_seconds"] < 30
