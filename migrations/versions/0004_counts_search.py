"""counts and search: the catalog's row count kept by triggers, and trigram
indexes for substring search on PostgreSQL

Revision ID: 0004_counts_search
Revises: 0003_sites
Create Date: 2026-11-21

A list's true `total` without a filter is read from row_counts (one row) rather
than counted over the whole table; triggers in the database keep it exact for
every insert and delete, whoever makes them. `q` (a substring of title or author,
any case) is answered from trigram indexes where PostgreSQL has pg_trgm (Debian's
and the official images do); elsewhere the same query scans, with the same result.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0004_counts_search"
down_revision = "0003_sites"
branch_labels = None
depends_on = None

COUNTED_TABLES = ("books",)
TRIGRAM_INDEXES = {"ix_books_title_trgm": "title", "ix_books_author_trgm": "author"}
log = logging.getLogger("alembic.runtime.migration")

POSTGRES_FUNCTION = """
CREATE FUNCTION row_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE row_counts SET row_count = row_count + (SELECT count(*) FROM changed)
        WHERE table_name = TG_TABLE_NAME;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE row_counts SET row_count = row_count - (SELECT count(*) FROM changed)
        WHERE table_name = TG_TABLE_NAME;
    ELSE
        UPDATE row_counts SET row_count = 0 WHERE table_name = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$
"""


def upgrade():
    op.create_table(
        "row_counts",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_row_counts")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(POSTGRES_FUNCTION)
    for table in COUNTED_TABLES:
        op.execute(
            f"INSERT INTO row_counts (table_name, row_count) "
            f"SELECT '{table}', count(*) FROM {table}"
        )
        count_rows_postgres(table) if postgres else count_rows_sqlite(table)
    if postgres:
        create_trigram_indexes()


def count_rows_postgres(table: str) -> None:
    """Statement triggers: a bulk insert or delete updates the count once."""
    for event, transition in (("INSERT", "NEW"), ("DELETE", "OLD")):
        op.execute(
            f"CREATE TRIGGER {table}_count_{event.lower()} AFTER {event} ON {table} "
            f"REFERENCING {transition} TABLE AS changed FOR EACH STATEMENT "
            "EXECUTE FUNCTION row_counts_track()"
        )
    op.execute(
        f"CREATE TRIGGER {table}_count_truncate AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION row_counts_track()"
    )


def count_rows_sqlite(table: str) -> None:
    """SQLite has row triggers only (and no TRUNCATE: a DELETE fires them)."""
    for event, change in (("INSERT", "+"), ("DELETE", "-")):
        op.execute(
            f"CREATE TRIGGER {table}_count_{event.lower()} AFTER {event} ON {table} "
            f"BEGIN UPDATE row_counts SET row_count = row_count {change} 1 "
            f"WHERE table_name = '{table}'; END"
        )


def create_trigram_indexes() -> None:
    available = op.get_bind().exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    )
    if available.first() is None:
        log.warning("pg_trgm is not installed: `q` searches will scan the catalog")
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, column in TRIGRAM_INDEXES.items():
        op.execute(
            f"CREATE INDEX {name} ON books USING gin (lower({column}) gin_trgm_ops)"
        )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for table in COUNTED_TABLES:
        events = ("insert", "delete", "truncate") if postgres else ("insert", "delete")
        for event in events:
            on_table = f" ON {table}" if postgres else ""
            op.execute(f"DROP TRIGGER IF EXISTS {table}_count_{event}{on_table}")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS row_counts_track()")
    op.drop_table("row_counts")
