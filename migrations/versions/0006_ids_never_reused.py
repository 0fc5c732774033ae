"""ids never reused: SQLite tables with integer ids get AUTOINCREMENT

Revision ID: 0006_ids_never_reused
Revises: 0005_canonical_emails
Create Date: 2026-11-30

Without AUTOINCREMENT, SQLite gives a new row the largest id in use plus one, so
the id of the account (or book, loan, site, instrument) deleted last went to the
next one made: an old reference, a log line or a cached link could point at a new
owner. With it, SQLite keeps the largest id ever given in sqlite_sequence and
never goes below it. PostgreSQL's sequences never go back either: nothing to do
there.

SQLite cannot alter a primary key, so each table is rebuilt the way its manual
says (https://sqlite.org/lang_altertable.html#otheralter): a new table with the
same definition plus AUTOINCREMENT, the rows copied with their ids, the old table
dropped, the new one renamed, its indexes and triggers made again from their own
SQL, and the foreign keys checked before the commit. migrations/env.py turns
foreign-key enforcement off around the transaction, as that procedure requires.

Ids freed before this upgrade, above the largest one left, can still be given
once more; from here on none is.

Backward compatible: the tables' columns are unchanged, so the previous release
reads and writes them as before.
"""

from alembic import op

revision = "0006_ids_never_reused"
down_revision = "0005_canonical_emails"
branch_labels = None
depends_on = None

TABLES = ("users", "books", "loans", "sites", "freezers", "computers")


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            rebuild(table, with_autoincrement)
        check_foreign_keys()


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            rebuild(table, without_autoincrement)
        check_foreign_keys()


def with_autoincrement(table: str, definition: str) -> str:
    # SQLite takes AUTOINCREMENT only on a column's own PRIMARY KEY, so the
    # table-level constraint moves onto the id column, keeping its name.
    definition = replace_once(
        definition, f", \n\tCONSTRAINT pk_{table} PRIMARY KEY (id)", ""
    )
    return replace_once(
        definition,
        "\tid INTEGER NOT NULL, ",
        f"\tid INTEGER NOT NULL CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT, ",
    )


def without_autoincrement(table: str, definition: str) -> str:
    definition = replace_once(
        definition,
        f"\tid INTEGER NOT NULL CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT, ",
        "\tid INTEGER NOT NULL, ",
    )
    last = definition.rindex("\n)")
    return (
        definition[:last]
        + f", \n\tCONSTRAINT pk_{table} PRIMARY KEY (id)"
        + definition[last:]
    )


def replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"unexpected table definition, cannot rebuild: {text}")
    return text.replace(old, new)


def rebuild(table: str, change) -> None:
    connection = op.get_bind()
    definition = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar_one()
    dependents = (
        connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            "AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        )
        .scalars()
        .all()
    )
    rebuilt = f"{table}_rebuilt"
    # After a rename SQLite keeps the name quoted: `CREATE TABLE "users" (`.
    columns_and_constraints = change(table, definition).split("(", 1)[1]
    new_definition = f"CREATE TABLE {rebuilt} ({columns_and_constraints}"
    statements = [
        new_definition,
        f"INSERT INTO {rebuilt} SELECT * FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {rebuilt} RENAME TO {table}",
        *dependents,  # dropped with the old table
    ]
    for statement in statements:
        connection.exec_driver_sql(statement)


def check_foreign_keys() -> None:
    broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken}")
