"""canonical emails: one form of an address for uniqueness, sign-in and limits

Revision ID: 0005_canonical_emails
Revises: 0004_counts_search
Create Date: 2026-11-30

An address was unique by the database's lower(), looked up by it, and rate-limited
by Python's str.lower(): three ways of folding case, which disagree in Unicode
(PostgreSQL folds the dotted capital I one way, Python another). Each user now has
`email_canonical`, made in Python alone (myapp.users.models.canonical_email: NFKC,
case-folded, NFKC again); it is unique, and sign-in and every limit key use it.
The address is still kept and answered as it was given.

Backward compatible for one release: the column has a default, so the previous
release (which does not set it) still inserts; the unique index only refuses a
second account with the same canonical form. Two existing accounts whose
addresses fold to one form stop the upgrade, naming them.
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0005_canonical_emails"
down_revision = "0004_counts_search"
branch_labels = None
depends_on = None


def canonical_email(address: str) -> str:
    # The same function as myapp.users.models.canonical_email, frozen here: a
    # migration must mean what it meant when it was written.
    folded = unicodedata.normalize("NFKC", address).casefold()
    return unicodedata.normalize("NFKC", folded)


def upgrade():
    op.add_column(
        "users",
        sa.Column(
            "email_canonical", sa.String(length=512), nullable=False, server_default=""
        ),
    )
    users = sa.table(
        "users", sa.column("id"), sa.column("email"), sa.column("email_canonical")
    )
    connection = op.get_bind()
    owners: dict[str, str] = {}
    for user_id, email in connection.execute(sa.select(users.c.id, users.c.email)):
        canonical = canonical_email(email)
        if canonical in owners:
            raise RuntimeError(
                f"the addresses {owners[canonical]!r} and {email!r} are one address "
                "now: merge or rename one of these accounts, then upgrade"
            )
        owners[canonical] = email
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(email_canonical=canonical)
        )
    op.create_index(
        "uq_users_email_canonical", "users", ["email_canonical"], unique=True
    )
    op.drop_index("uq_users_email_lower", table_name="users")


def downgrade():
    op.create_index(
        "uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True
    )
    op.drop_index("uq_users_email_canonical", table_name="users")
    op.drop_column("users", "email_canonical")
