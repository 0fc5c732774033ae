"""sites: lab sites, freezers, computers and containers

Revision ID: 0003_sites
Revises: 0002_books
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_sites"
down_revision = "0002_books"
branch_labels = None
depends_on = None


def timestamps():
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def instrument_table(name: str, *extra):
    """A freezer or computer: at a site, which cannot go while they remain."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        *extra,
        *timestamps(),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f(f"fk_{name}_site_id_sites"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    op.create_index(f"ix_{name}_site_id", name, ["site_id"])


def upgrade():
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("state_or_region", sa.Text(), nullable=True),
        sa.Column("country", sa.Text(), nullable=True),
        sa.Column("postcode_or_zip", sa.Text(), nullable=True),
        *timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_index("ix_sites_country", "sites", ["country"])
    op.create_index("ix_sites_name", "sites", ["name"])
    instrument_table("freezers")
    instrument_table(
        "computers",
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.UniqueConstraint("mac", name=op.f("uq_computers_mac")),
    )
    op.create_table(
        "containers",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("freezer_id", sa.Integer(), nullable=False),
        *timestamps(),
        sa.ForeignKeyConstraint(
            ["freezer_id"],
            ["freezers.id"],
            name=op.f("fk_containers_freezer_id_freezers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_containers")),
    )
    op.create_index("ix_containers_freezer_id", "containers", ["freezer_id"])


def downgrade():
    op.drop_table("containers")
    op.drop_table("computers")
    op.drop_table("freezers")
    op.drop_table("sites")
