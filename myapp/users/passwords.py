"""Password hashes: Argon2id (argon2-cffi) at the configured cost.

A hash or a check takes tens to hundreds of milliseconds of CPU (the fleet test
measured up to 2.8 s while a deploy built on its 2 cores). None is made while the
request holds the database: a registration hashes before its first statement; a
sign-in and a password change read the account, let the database go
(`transactions.let_the_database_go`), then check the password and hash the new
one, and write (a rehash, the change) on a row whose hash is still the one
checked. (The one exception is rare: a password that changed during a password
change's check is checked again on the locked row.)
"""

import uuid
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app


def argon2_params() -> tuple[int, int, int]:
    config = current_app.config
    return (
        config["ARGON2_TIME_COST"],
        config["ARGON2_MEMORY_COST"],
        config["ARGON2_PARALLELISM"],
    )


@cache
def password_hasher(time_cost: int, memory_cost: int, parallelism: int):
    """Argon2id (argon2-cffi's default type) with the configured cost."""
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
    )


@cache
def dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return password_hasher(time_cost, memory_cost, parallelism).hash(uuid.uuid4().hex)


def hash_password(password: str) -> str:
    return password_hasher(*argon2_params()).hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return password_hasher(*argon2_params()).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_nobodys_password(password: str) -> None:
    """Spend what checking a real account's password would: a sign-in for an
    address nobody has takes as long as one with a wrong password."""
    verify_password(dummy_hash(*argon2_params()), password)


def needs_rehash(password_hash: str) -> bool:
    """Made at another cost than the configured one."""
    return password_hasher(*argon2_params()).check_needs_rehash(password_hash)
