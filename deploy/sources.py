"""Release trees for the deploy tests to ship: this checkout as deploy.sh copies
it, and variants of it (one that cannot start, one with a migration added)."""

import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree_copy(directory: str) -> str:
    """This checkout, less what deploy.sh never ships, under `directory`."""
    source = os.path.join(directory, "source")
    subprocess.run(
        [
            "rsync",
            "-a",
            f"--exclude-from={ROOT}/deploy/rsync-exclude",
            f"{ROOT}/",
            source,
        ],
        check=True,
    )
    return source


def broken_copy(directory: str) -> str:
    """This tree with an app that cannot start."""
    source = tree_copy(directory)
    with open(os.path.join(source, "wsgi.py"), "a") as handle:
        handle.write("\nraise RuntimeError('this release is broken')\n")
    return source


def added_column_copy(directory: str) -> str:
    """This tree with one more migration: a nullable column, which the release
    before keeps inserting rows without."""
    source = tree_copy(directory)
    versions = os.path.join(source, "migrations", "versions")
    head = sorted(name for name in os.listdir(versions) if name[:4].isdigit())[-1]
    with open(os.path.join(versions, "9999_nickname.py"), "w") as handle:
        handle.write(ADDED_COLUMN.format(head=head.removesuffix(".py")))
    return source


ADDED_COLUMN = '''"""an added column: nullable, so the release before inserts
without it"""
import sqlalchemy as sa
from alembic import op

revision = "9999_nickname"
down_revision = "{head}"


def upgrade():
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))


def downgrade():
    op.drop_column("users", "nickname")
'''
