"""User accounts (SQL): one canonical form of each email, Argon2id password
hashes, roles, and the last admin kept. Their sign-in sessions and tokens are
in sessions.py."""

import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import CheckConstraint, Index, String, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column, validates

from myapp.auth import ROLES
from myapp.db import sql
from myapp.errors import ApiError, conflict, not_found, unauthorized
from myapp.pagination import ListQuery, Page
from myapp.schema import TIMESTAMP, email_address, object_schema, text_schema, validate
from myapp.sql_model import SqlModel, Timestamped, contains_any_case, iso
from myapp.transactions import let_the_database_go
from myapp.users.passwords import (
    hash_password,
    needs_rehash,
    verify_nobodys_password,
    verify_password,
)

NAME = text_schema(100)
PASSWORD = {"type": "string", "minLength": 10, "maxLength": 128}
ROLE = {"type": "string", "enum": list(ROLES)}


def canonical_email(address: str) -> str:
    """The one form of an address that uniqueness, sign-in and every rate limit
    key use: compatibility-normalised (full-width letters, the Kelvin sign) and
    case-folded (ß is ss), in Python alone, so no database's idea of lower() can
    make two spellings one account for one purpose and two for another."""
    folded = unicodedata.normalize("NFKC", address).casefold()
    return unicodedata.normalize("NFKC", folded)


def bad_credentials(message: str = "Invalid email or password") -> ApiError:
    return unauthorized(message)


class UserModel(SqlModel, Timestamped, sql.Model):
    __tablename__ = "users"
    label = "User"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))  # as it was given
    email_canonical: Mapped[str] = mapped_column(String(512))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default="member")
    password_hash: Mapped[str] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint("role IN ('member', 'staff', 'admin')", name="role"),
        # One account per address, in its one canonical form (canonical_email).
        Index("uq_users_email_canonical", email_canonical, unique=True),
    )
    sort_columns = {
        "id": "id",
        "email": "email_canonical",
        "name": "name",
        "created_at": "created_at",
    }

    read_schema = object_schema(
        "User",
        {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "name": {"type": "string"},
            "role": ROLE,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )
    write_schema = {
        "title": "Registration",
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password", "name"],
        "properties": {"email": email_address(), "password": PASSWORD, "name": NAME},
    }
    profile_schema = {
        "title": "ProfileUpdate",
        "description": "Change your name and/or your password (with current_password).",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "name": NAME,
            "password": {
                **PASSWORD,
                "description": "The new password; needs current_password (else 401)",
            },
            "current_password": {
                "type": "string",
                "maxLength": 128,
                "description": "Re-authentication: checked whenever it is sent",
            },
        },
    }
    admin_schema = {
        "title": "UserUpdate",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {"name": NAME, "role": ROLE},
    }

    @validates("email")
    def keep_canonical_email(self, _key: str, address: str) -> str:
        """Whoever sets an address sets its canonical form with it."""
        self.email_canonical = canonical_email(address)
        return address

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    @classmethod
    def by_email(cls, email: str) -> "UserModel | None":
        statement = select(cls).where(cls.email_canonical == canonical_email(email))
        return sql.session.scalars(statement).first()

    @classmethod
    def list(cls, query: ListQuery) -> Page:
        statement = select(cls)
        if "role" in query.filters:
            statement = statement.where(cls.role == query.filters["role"])
        if "q" in query.filters:
            statement = statement.where(
                contains_any_case(query.filters["q"], cls.email, cls.name)
            )
        return cls.page(statement, query)

    @classmethod
    def create(cls, data: dict, role: str = "member") -> "UserModel":
        validate(cls.write_schema, data)
        user = cls(email=data["email"], name=data["name"], role=role)
        # Hashed before the first statement: the hash takes tens of milliseconds,
        # and on SQLite a write holds the database's one write lock from there on.
        user.set_password(data["password"])
        if cls.by_email(data["email"]) is not None:
            raise conflict("A user with this email already exists")
        sql.session.add(user)
        # The unique index decides between concurrent registrations of one address.
        user.flush_or_conflict("A user with this email already exists")
        return user

    @classmethod
    def authenticate(cls, email: str, password: str) -> "CheckedAccount":
        """The account with these credentials, else 401 with one message for every
        failure, taking the same time whether or not the email exists. The password
        is checked after the request has let the database go: a check holds no
        connection, no slot and no lock (on SQLite, the one write lock) for its
        hundreds of milliseconds. A hash made at an older cost is made again."""
        account = sql.session.execute(
            select(cls.id, cls.role, cls.password_hash).where(
                cls.email_canonical == canonical_email(email)
            )
        ).first()
        let_the_database_go()
        if account is None:
            verify_nobodys_password(password)
            raise bad_credentials()
        checked = CheckedAccount(*account)
        if not verify_password(checked.password_hash, password):
            raise bad_credentials()
        if needs_rehash(checked.password_hash):
            checked = cls.replace_password_hash(checked, password)
        return checked

    @classmethod
    def replace_password_hash(
        cls, checked: "CheckedAccount", password: str
    ) -> "CheckedAccount":
        """Hash the password at today's cost, if the account's hash is still the
        one checked; else (the password changed meanwhile) a 401."""
        new_hash = hash_password(password)
        replaced = sql.session.execute(
            update(cls)
            .where(cls.id == checked.id, cls.password_hash == checked.password_hash)
            .values(password_hash=new_hash)
        )
        if replaced.rowcount != 1:
            raise bad_credentials()
        return checked._replace(password_hash=new_hash)

    @classmethod
    def unchanged_since(cls, checked: "CheckedAccount") -> bool:
        """Whether the account still has the password hash and role it had when
        its password was checked (it was not changed, nor deleted, meanwhile)."""
        row = cls.read_row(checked.id)
        return row is not None and (row.password_hash, row.role) == (
            checked.password_hash,
            checked.role,
        )

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    @classmethod
    def check_profile_update(cls, user_id: int, data: dict) -> "ProfileUpdate":
        """A self-service update, checked before the user's row is locked: its body
        (400), and whenever current_password is sent, that it is right (401) and,
        for a new password, its hash. The checks run after the request has let
        the database go, holding no lock (on SQLite, no write lock) through them."""
        validate(cls.profile_schema, data)
        # Changing the password is a re-authentication: the current one must come
        # along, and whenever it is sent it must be right.
        if "password" in data and "current_password" not in data:
            raise bad_credentials("Send current_password to change your password")
        if "current_password" not in data:
            return ProfileUpdate(data)
        user = cls.read_row(user_id)
        let_the_database_go()
        if user is None:
            raise bad_credentials("This account no longer exists")
        if not verify_password(user.password_hash, data["current_password"]):
            raise bad_credentials("Current password is incorrect")
        new_hash = hash_password(data["password"]) if "password" in data else None
        return ProfileUpdate(data, user.password_hash, new_hash)

    def update_profile(self, change: "ProfileUpdate") -> set[str]:
        """Apply a checked self-service update to the locked user; returns the
        fields changed. If the password changed since current_password was checked
        (a rare race: another change, a rehash at sign-in), the check proves
        nothing: it is made again, on the locked row (401 if wrong), the one
        password check made while a request holds the database."""
        if change.checked_hash not in (None, self.password_hash):
            if not verify_password(self.password_hash, change.data["current_password"]):
                raise bad_credentials("Current password is incorrect")
        if change.new_hash is not None:
            self.password_hash = change.new_hash
        if "name" in change.data:
            self.name = change.data["name"]
        sql.session.flush()  # so updated_at, which the answer shows, is set
        return set(change.data) - {"current_password"}

    @classmethod
    def get_for_admin_change(cls, user_id: int) -> "UserModel":
        """The user an admin changes or deletes, locked (404 if missing) together
        with every admin row, all in id order: of two admins demoting each other at
        once, the second then waits for the first instead of each holding the row
        the other needs (a deadlock, ended only by the lock timeout)."""
        locked = sql.session.scalars(
            select(cls)
            .where(or_(cls.id == user_id, cls.role == "admin"))
            .order_by(cls.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        for user in locked:
            if user.id == user_id:
                return user
        raise not_found(cls.label)

    def update(self, data: dict) -> set[str]:
        """An admin's update (name, role); the last admin keeps the role."""
        validate(self.admin_schema, data)
        if data.get("role", "admin") != "admin":
            self.ensure_not_last_admin()
        changed = {key for key, value in data.items() if getattr(self, key) != value}
        for key, value in data.items():
            setattr(self, key, value)
        sql.session.flush()  # so updated_at, which the answer shows, is set
        return changed

    def delete(self) -> None:
        """The last admin stays; so does anyone other records (loans) refer to."""
        self.ensure_not_last_admin()
        sql.session.delete(self)
        self.flush_or_conflict("This user has loans on record and cannot be deleted")

    def ensure_not_last_admin(self) -> None:
        """Count the admins, their rows locked so none is demoted meanwhile. Taken
        through `get_for_admin_change`, they are all locked already: the second of
        two admins demoting each other has waited there and now sees one admin
        left (SQLite, which has no row locks, refuses the second writer instead)."""
        if self.role != "admin":
            return
        admins = sql.session.scalars(
            select(UserModel.id).where(UserModel.role == "admin").with_for_update()
        ).all()
        if len(admins) <= 1:
            raise conflict("The last admin cannot be removed or demoted")


class CheckedAccount(NamedTuple):
    """An account as it was when its password was checked."""

    id: int
    role: str
    password_hash: str


@dataclass(frozen=True)
class ProfileUpdate:
    """A self-service update whose checks passed: the body, the password hash
    current_password was checked against, and the new password's hash."""

    data: dict
    checked_hash: str | None = None
    new_hash: str | None = None
