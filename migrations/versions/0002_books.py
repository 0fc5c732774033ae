"""books: the catalog and its loans

Revision ID: 0002_books
Revises: 0001_users
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_books"
down_revision = "0001_users"
branch_labels = None
depends_on = None

OPEN = sa.text("returned_at IS NULL")


def upgrade():
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("isbn", sa.String(length=13), nullable=False),
        sa.Column("published_year", sa.Integer(), nullable=True),
        sa.Column("copies_total", sa.Integer(), nullable=False),
        sa.Column("copies_available", sa.Integer(), nullable=False),
        sa.Column("times_borrowed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "copies_available >= 0 AND copies_available <= copies_total",
            name=op.f("ck_books_copies"),
        ),
        sa.CheckConstraint("times_borrowed >= 0", name=op.f("ck_books_times_borrowed")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_books")),
        sa.UniqueConstraint("isbn", name=op.f("uq_books_isbn")),
    )
    op.create_index("ix_books_author", "books", ["author"])
    op.create_index("ix_books_created_at", "books", ["created_at"])
    # GET /books/popular: ORDER BY times_borrowed DESC, id LIMIT n reads this index.
    op.create_index("ix_books_popular", "books", [sa.text("times_borrowed DESC"), "id"])
    op.create_index("ix_books_published_year", "books", ["published_year"])
    op.create_index("ix_books_title", "books", ["title"])

    op.create_table(
        "loans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("borrowed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["book_id"],
            ["books.id"],
            name=op.f("fk_loans_book_id_books"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_loans_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
    )
    op.create_index("ix_loans_book_id", "loans", ["book_id"])
    op.create_index("ix_loans_user_id_returned_at", "loans", ["user_id", "returned_at"])
    # One open loan per member and book, enforced by the database itself.
    op.create_index(
        "uq_loans_open_per_member_book",
        "loans",
        ["user_id", "book_id"],
        unique=True,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade():
    op.drop_table("loans")
    op.drop_table("books")
