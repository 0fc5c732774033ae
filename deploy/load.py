"""A steady mixed load, as clients would send it, with every answer recorded: the
deploy and fleet tests run it through nginx while they deploy or break something,
then count what clients saw.

Each worker thread loops over: a catalog read, a signed-in read, a borrow with an
Idempotency-Key (and its return), and a write (a new account). A write that fails
with 503 is retried with the same Idempotency-Key, as docs/api.md tells clients to,
so every write can be accounted for afterwards.
"""

import collections
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

READ, SIGNED_IN_READ, BORROW, WRITE = "read", "signed-in read", "borrow", "write"


@dataclass
class Outcome:
    kind: str
    status: int  # 0: no HTTP answer at all
    started: float
    seconds: float  # until the answer came, or none
    # With no answer: why (the exception, as the client saw it). With a 5xx: the
    # error's code and request id, to find it in the servers' logs.
    error: str = ""


@dataclass
class Load:
    base: str
    token: str
    book_id: int | None = None  # None: no borrows
    threads: int = 4
    pause: float = 0.02
    host: str | None = None  # the Host header, where it is not the base's
    # A new connection for every request, as nginx opens upstream: uWSGI's HTTP
    # socket closes each connection after its answer, without saying so.
    close: bool = False
    outcomes: list = field(default_factory=list)
    written: list = field(default_factory=list)  # emails of accounts made
    loans: set = field(default_factory=set)  # ids of the loans the borrows made

    def __post_init__(self):
        self._stop = threading.Event()
        self._workers = []
        self._lock = threading.Lock()

    def __enter__(self):
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, args=(number,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *_):
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def failures(self, kind: str | None = None) -> list:
        """Answers a client could not take as done: no answer, or a 5xx."""
        return [
            outcome
            for outcome in self.outcomes
            if (kind is None or outcome.kind == kind)
            and (outcome.status == 0 or outcome.status >= 500)
        ]

    def summary(self) -> dict:
        counts = collections.Counter((o.kind, o.status) for o in self.outcomes)
        return {f"{kind} {status}": n for (kind, status), n in sorted(counts.items())}

    def _record(self, kind, status, started, error=""):
        outcome = Outcome(kind, status, started, time.monotonic() - started, error)
        with self._lock:
            self.outcomes.append(outcome)

    def _send(self, session, method, path, kind, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        headers = {
            **kwargs.pop("headers", {}),
            **({"Host": self.host} if self.host else {}),
        }
        try:
            response = (requests if self.close else session).request(
                method, self.base + path, headers=headers, timeout=20, **kwargs
            )
        except requests.RequestException as failure:
            self._record(kind, 0, started, f"{type(failure).__name__}: {failure}"[:300])
            return None
        said = ""
        if response.status_code >= 500:
            said = f"{response.headers.get('X-Request-ID')} {response.text[:200]}"
        self._record(kind, response.status_code, started, said)
        return response

    def _write(self, session, method, path, kind, body, headers):
        """A write with an Idempotency-Key, retried on 503 or no answer with the
        same key, as a client should: it completes exactly once. Returns the
        final answer and whether it was a retry."""
        headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        deadline = time.monotonic() + 90
        attempt = 0
        while time.monotonic() < deadline:
            response = self._send(
                session, method, path, kind, json=body, headers=headers
            )
            attempt += 1
            if response is None or response.status_code >= 500:
                time.sleep(0.25)
            elif response.status_code == 409 and "in progress" in response.text:
                # The first attempt's claim on the key is still open (its host
                # may have died with it): come back as Retry-After says.
                time.sleep(float(response.headers.get("Retry-After", 1)))
            else:
                return response, attempt > 1
        return None, True

    def _run(self, number: int) -> None:
        session = requests.Session()
        auth = {"Authorization": f"Bearer {self.token}"}
        step = 0
        while not self._stop.is_set():
            step += 1
            self._send(session, "GET", "/books/?per_page=5", READ)
            self._send(session, "GET", "/users/me", SIGNED_IN_READ, headers=auth)
            if self.book_id is not None and step % 3 == 0:
                loan, _ = self._write(
                    session, "POST", f"/books/{self.book_id}/loans", BORROW, {}, auth
                )
                if loan is not None and loan.status_code == 201:
                    with self._lock:
                        self.loans.add(loan.json()["id"])
                    self._write(
                        session,
                        "POST",
                        f"/books/loans/{loan.json()['id']}/return",
                        BORROW,
                        None,
                        auth,
                    )
            if step % 5 == 0:
                email = f"load-{number}-{uuid.uuid4().hex[:10]}@example.com"
                body = {"email": email, "password": "a load password", "name": "L"}
                made, retried = self._write(session, "POST", "/users/", WRITE, body, {})
                # A retry answered 409: the first attempt was applied after all.
                if made is not None and (
                    made.status_code == 201 or (retried and made.status_code == 409)
                ):
                    with self._lock:
                        self.written.append(email)
            time.sleep(self.pause)
