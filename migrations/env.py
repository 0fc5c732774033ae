"""Alembic environment for Flask-Migrate: the schema comes only from these scripts."""

import logging
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name is not None:
    # Keep the app's own loggers alive when migrations run inside a process.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

db = current_app.extensions["migrate"].db
target_metadata = db.metadata


def configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=db.engine.dialect.name == "sqlite",
        **kwargs,
    )


def run_migrations_offline() -> None:
    configure(url=db.engine.url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    def skip_empty_autogenerate(context_, revision, directives):
        if getattr(config.cmd_opts, "autogenerate", False):
            if directives[0].upgrade_ops.is_empty():
                directives[:] = []
                logger.info("No changes in schema detected.")

    with db.engine.connect() as connection, foreign_keys_deferred(connection):
        configure(
            connection=connection, process_revision_directives=skip_empty_autogenerate
        )
        with context.begin_transaction():
            context.run_migrations()


@contextmanager
def foreign_keys_deferred(connection):
    """SQLite rebuilds a table by dropping it and renaming a copy, which its
    enforced foreign keys would refuse (or cascade): enforcement is off around the
    migration's transaction, as SQLite's manual prescribes, and the migrations that
    rebuild run `PRAGMA foreign_key_check` before they commit. The pragma is a
    no-op inside a transaction, so it goes to the driver's connection directly."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
