"""A small fleet on one machine, for the fleet test: hosts are network namespaces
on one bridge, each with its own address, its own mount namespace (its own /srv,
/etc/myapp and /run/myapp) and real Debian servers: sshd, nginx, PostgreSQL,
PgBouncer, Redis and Redis Sentinel. Needs root and Debian's packages (see
.ci/run). Everything made here is removed by `Fleet.close()`: the processes, the
namespaces and the bridge.

The app hosts have no systemd (it cannot run in a namespace): their uWSGI slots
run under deploy/slot-supervisor.sh, the same command, environment and graceful
stop as deploy/myapp@.service.
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import time

from deploy.nginx_site import nginx_main_config

POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
# Directories each app host has its own copy of, bound over the machine's.
PRIVATE_DIRS = ("/srv", "/etc/myapp", "/run/myapp")


def wait_for_port(address: str, port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Host:
    """A network namespace plus a mount namespace, held open by an idle process
    that every command of this host enters."""

    def __init__(self, fleet: "Fleet", name: str, address: str):
        self.name, self.address = name, address
        self.netns = f"{fleet.prefix}-{name}"
        self.root = os.path.join(fleet.directory, name)
        os.makedirs(self.root)
        self.processes: dict[str, subprocess.Popen] = {}
        binds = []
        for directory in PRIVATE_DIRS:
            own = os.path.join(self.root, directory.strip("/").replace("/", "-"))
            os.makedirs(own)
            binds.append(f"mount --bind {own} {directory}")
        self.anchor = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.netns),
                *("unshare", "--mount", "--propagation", "private"),
                *("bash", "-c", " && ".join(binds + ["exec sleep infinity"])),
            ],
            start_new_session=True,
        )
        for _ in range(100):  # the binds are made once the process runs sleep
            if os.path.exists(f"/proc/{self.anchor.pid}/exe") and os.readlink(
                f"/proc/{self.anchor.pid}/exe"
            ).endswith("sleep"):
                break
            time.sleep(0.05)

    def command(self, argv: list[str], user: str | None = None) -> list[str]:
        """argv inside this host. nsenter and setpriv exec it (no process stays
        between): a signal to the process reaches the server itself (runuser would
        stay, and hold a stop for 2 s)."""
        inside = ["nsenter", "-t", str(self.anchor.pid), "-m", "-n"]
        if user:
            inside += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
        return inside + argv

    def run(self, argv, user=None, **options) -> subprocess.CompletedProcess:
        options.setdefault("check", True)
        options.setdefault("capture_output", True)
        options.setdefault("text", True)
        return subprocess.run(self.command(argv, user), **options)

    def start(self, name: str, argv: list[str], user: str | None = None) -> None:
        """A server of this host, in the foreground, logging to <root>/<name>.log."""
        log = open(os.path.join(self.root, f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(
            self.command(argv, user),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def pids(self) -> list[int]:
        listed = subprocess.run(
            ["ip", "netns", "pids", self.netns], capture_output=True, text=True
        )
        return [int(pid) for pid in listed.stdout.split()]

    def kill_everything(self) -> None:
        """Every process of this host, at once (as a crash or a power cut). Again
        until none is left: a parent killed after its child can start another
        first (an nginx master its worker), which would live on and answer."""
        deadline = time.monotonic() + 10
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for process in [*self.processes.values(), self.anchor]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()


class Fleet:
    """The bridge and its hosts. `add(name)` makes a host with the next address."""

    def __init__(self, directory: str):
        self.directory = directory
        self.prefix = f"mf{os.getpid() % 10000:04d}"
        self.subnet = f"10.{random.randint(100, 250)}.{random.randint(1, 250)}"
        self.bridge = f"{self.prefix}br"
        self.hosts: dict[str, Host] = {}
        self.made_dirs = [
            d for d in PRIVATE_DIRS + ("/run/sshd",) if not os.path.isdir(d)
        ]
        for made in self.made_dirs:
            os.makedirs(made)
        self._ip("link", "add", self.bridge, "type", "bridge")
        self._ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")

    @staticmethod
    def _ip(*argv: str, netns: str | None = None) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        subprocess.run([*prefix, "ip", *argv], check=True, capture_output=True)

    def add(self, name: str) -> Host:
        number = len(self.hosts) + 10
        address = f"{self.subnet}.{number}"
        netns, outside, inside = (
            f"{self.prefix}-{name}",
            f"{self.prefix}v{number}",
            "eth0",
        )
        self._ip("netns", "add", netns)
        self._ip("link", "add", outside, "type", "veth", "peer", "name", f"{outside}p")
        self._ip("link", "set", f"{outside}p", "netns", netns)
        self._ip("link", "set", f"{outside}p", "name", inside, netns=netns)
        self._ip("addr", "add", f"{address}/24", "dev", inside, netns=netns)
        self._ip("link", "set", inside, "up", netns=netns)
        self._ip("link", "set", "lo", "up", netns=netns)
        self._ip("link", "set", outside, "master", self.bridge)
        self._ip("link", "set", outside, "up")
        host = Host(self, name, address)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill_everything()
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for made in reversed(self.made_dirs):
            shutil.rmtree(made, ignore_errors=True)


# --- The servers a host can run


def start_postgres(host: Host, password: str, port: int = 5432) -> None:
    """Debian's PostgreSQL 15 with a database `myapp` owned by the role `myapp`
    (password auth from the fleet's subnet), its timeouts set on the role as a
    transaction pooler requires, and pg_trgm made by the superuser."""
    data = os.path.join(host.root, "pg")
    os.makedirs(data)
    shutil.chown(data, "postgres", "postgres")
    host.run(
        [
            f"{POSTGRES_BIN}/initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ],
        user="postgres",
    )
    with open(os.path.join(data, "pg_hba.conf"), "a") as hba:
        hba.write(
            f"host all myapp {host.address.rsplit('.', 1)[0]}.0/24 scram-sha-256\n"
        )
    host.start(
        "postgres",
        [
            f"{POSTGRES_BIN}/postgres",
            "-D",
            data,
            "-c",
            f"listen_addresses={host.address}",
            "-c",
            f"port={port}",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=100",
        ],
        user="postgres",
    )
    wait_for_port(host.address, port)
    for statement in (
        f"CREATE ROLE myapp LOGIN PASSWORD '{password}'",
        "ALTER ROLE myapp SET statement_timeout = 2000",
        "ALTER ROLE myapp SET lock_timeout = 1000",
        "CREATE DATABASE myapp OWNER myapp",
    ):
        psql(host, data, port, "postgres", statement)
    psql(host, data, port, "myapp", "CREATE EXTENSION pg_trgm")


def psql(host: Host, data: str, port: int, database: str, statement: str) -> str:
    return host.run(
        [
            "psql",
            "-h",
            data,
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            statement,
        ],
        user="postgres",
    ).stdout


def start_pgbouncer(host: Host, password: str, port: int = 6432) -> None:
    """PgBouncer in transaction pooling mode in front of this host's PostgreSQL."""
    directory = os.path.join(host.root, "pgbouncer")
    os.makedirs(directory)
    with open(os.path.join(directory, "users.txt"), "w") as users:
        users.write(f'"myapp" "{password}"\n')
    with open(os.path.join(directory, "pgbouncer.ini"), "w") as config:
        config.write(
            "[databases]\n"
            f"myapp = host={host.address} port=5432 dbname=myapp\n"
            "[pgbouncer]\n"
            f"listen_addr = {host.address}\nlisten_port = {port}\n"
            # The unix socket is for `pgbouncer -R`: an online restart takes the
            # running process's sockets over through it.
            f"unix_socket_dir = {directory}\nauth_type = scram-sha-256\n"
            f"auth_file = {directory}/users.txt\n"
            "pool_mode = transaction\ndefault_pool_size = 10\nmax_client_conn = 500\n"
        )
    shutil.chown(directory, "postgres", "postgres")
    run_pgbouncer(host, port)


def run_pgbouncer(host: Host, port: int = 6432, online: bool = False) -> None:
    """(Re)start the PgBouncer start_pgbouncer set up. `online`: take over the
    running one's sockets, client and server connections included (-R)."""
    config = os.path.join(host.root, "pgbouncer", "pgbouncer.ini")
    argv = ["pgbouncer", *(["-R"] if online else []), config]
    host.start("pgbouncer", argv, user="postgres")
    wait_for_port(host.address, port)


def start_redis(host: Host, replica_of: Host | None = None, port: int = 6379) -> None:
    directory = os.path.join(host.root, "redis")
    os.makedirs(directory, exist_ok=True)
    replica = ["--replicaof", replica_of.address, str(port)] if replica_of else []
    host.start(
        "redis",
        [
            "redis-server",
            "--bind",
            host.address,
            "--port",
            str(port),
            "--dir",
            directory,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            *replica,
        ],
    )
    wait_for_port(host.address, port)


def start_sentinel(host: Host, primary: Host, port: int = 26379) -> None:
    """One of the fleet's sentinels, watching the primary as service `myapp`: two
    of three agree it is down after 2 s, and promote its replica. (At 1 s a
    sentinel's new link to a just-promoted primary was seen to time out, and the
    sentinels tried to fail over again, with no replica left.)"""
    config = os.path.join(host.root, "sentinel.conf")  # Sentinel rewrites it
    with open(config, "w") as handle:
        handle.write(
            f"bind {host.address}\nport {port}\nprotected-mode no\n"
            f"sentinel monitor myapp {primary.address} 6379 2\n"
            "sentinel down-after-milliseconds myapp 2000\n"
            "sentinel failover-timeout myapp 5000\n"
            "sentinel parallel-syncs myapp 1\n"
        )
    host.start("sentinel", ["redis-sentinel", config])
    wait_for_port(host.address, port)


def start_sshd(host: Host, authorized_key: str, environment: dict) -> None:
    """sshd for root with this key; sessions get `environment` (as a host's own
    settings would give them, such as its package mirror for pip)."""
    directory = os.path.join(host.root, "ssh")
    os.makedirs(directory)
    key = os.path.join(directory, "host_key")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True
    )
    with open(os.path.join(directory, "authorized_keys"), "w") as handle:
        handle.write(authorized_key)
    with open(os.path.join(directory, "sshd_config"), "w") as handle:
        handle.write(
            f"ListenAddress {host.address}\nPort 22\nHostKey {key}\n"
            f"AuthorizedKeysFile {directory}/authorized_keys\n"
            f"PidFile {directory}/sshd.pid\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\n"
            "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
            + " ".join(f"{name}={value}" for name, value in environment.items())
            + "\n"
        )
    host.start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", f"{directory}/sshd_config"])
    wait_for_port(host.address, 22)


def start_nginx(host: Host, site: str, directory: str) -> None:
    """nginx with one site, its files in `directory`."""
    os.makedirs(directory)
    config = os.path.join(directory, "nginx.conf")
    with open(config, "w") as handle:
        handle.write(nginx_main_config(directory, site))
    host.start("nginx", ["nginx", "-c", config, "-p", directory, "-g", "daemon off;"])
    wait_for_port(host.address, 80)
