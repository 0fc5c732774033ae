"""What counts as a backing service being unavailable, as opposed to a bug: what a
request meets when PostgreSQL or Redis is down, stalled, full or refusing writes.
Each is answered 503 with Retry-After (myapp/errors.py); the popular-books cache
steps around Redis's (myapp/books/models.py)."""

from redis import exceptions as redis_errors
from sqlalchemy import exc as sql_errors

from myapp.stalls import DatabaseBusy, DatabaseStalled

DATABASE_OUTAGES = (
    sql_errors.OperationalError,  # unreachable, a connection lost, a timeout
    sql_errors.InterfaceError,
    sql_errors.TimeoutError,  # no pooled connection came free in time
    DatabaseStalled,  # no answer within its deadline moments ago (myapp/stalls.py)
    DatabaseBusy,  # every database slot of the process taken
)
REDIS_OUTAGES = (
    redis_errors.ConnectionError,  # unreachable, or loading its data after a start
    redis_errors.TimeoutError,
    redis_errors.OutOfMemoryError,  # maxmemory reached under noeviction: no writes
    redis_errors.ReadOnlyError,  # a replica (a failover under way)
    redis_errors.ClusterDownError,  # its primary down
    redis_errors.TryAgainError,
)
# Refusals of the same kind that redis-py raises as a plain ResponseError: a script
# running past its time, writes stopped after a failed snapshot, too few replicas.
REDIS_REFUSAL_CODES = frozenset({"BUSY", "MISCONF", "NOREPLICAS"})


def is_outage(error: BaseException) -> bool:
    if isinstance(error, DATABASE_OUTAGES + REDIS_OUTAGES):
        return True
    return (
        isinstance(error, redis_errors.ResponseError)
        and str(error).split(" ", 1)[0] in REDIS_REFUSAL_CODES
    )
