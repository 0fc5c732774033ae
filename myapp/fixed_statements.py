"""Fixed statements of the hot paths, compiled once, sent as the driver's SQL.

Through `Session.execute`, a short statement of a borrow cost about 130 to 160 µs
of CPU; compiled once and sent with `Connection.exec_driver_sql`, 90 to 110: the
statement cache's lookup and the compiled execution context's set-up are skipped
(bench/ANALYSIS.md). The rest of SQLAlchemy's execution stays: its events (the
stall guard's deadline and breaker, and any instrumentation), its errors (the
unique index's violation is an IntegrityError) and a lost connection's handling.
What such a statement does itself, as the compiled execution would:
- the bound parameters' values processed by their types for the dialect
  (SQLite keeps datetimes as text), and the statement's own literals bound;
- the rows' values processed by the column types (SQLite's text datetimes).
What it does not do: Python-side column defaults (a statement names every value
it writes, `updated_at` included), and types whose result conversion needs the
driver's type code (Numeric on psycopg; today's tables have none).
"""

from collections import namedtuple
from typing import NamedTuple

from sqlalchemy.engine import Connection


class Compiled(NamedTuple):
    """A statement as one dialect runs it."""

    text: str
    literals: dict  # name: value, of the literals the statement was written with
    parameters: list[str]  # the names each run gives values for
    order: list[str] | None  # every bound name, for a positional paramstyle
    bind_processors: list  # (name, the type's conversion), where it has one
    result_processors: list


class Ran(NamedTuple):
    rows: list
    rowcount: int


class FixedStatement:
    """A Core statement (a select, or a write, with RETURNING or without) whose rows
    are named tuples of its columns. Its bound parameters are given by name at
    each run; literals in the statement are bound as they were written."""

    def __init__(self, statement):
        self.statement = statement
        self.columns = list(statement.exported_columns)
        names = [column.key for column in self.columns]
        self.row_type = namedtuple("Row", names, rename=True)
        self.by_dialect: dict[str, Compiled] = {}

    def for_dialect(self, dialect) -> Compiled:
        known = self.by_dialect.get(dialect.name)
        if known is None:
            compiled = self.statement.compile(dialect=dialect)
            binds = compiled.bind_names.items()
            # One conversion per name, however many places the name is bound in.
            processors = {
                name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                for bind, name in binds
            }
            known = Compiled(
                compiled.string,
                {
                    name: bind.effective_value
                    for bind, name in binds
                    if not bind.required
                },
                sorted({name for bind, name in binds if bind.required}),
                list(compiled.positiontup) if compiled.positional else None,
                [(name, process) for name, process in processors.items() if process],
                [
                    column.type.dialect_impl(dialect).result_processor(dialect, None)
                    for column in self.columns
                ],
            )
            self.by_dialect[dialect.name] = known
        return known

    def run(self, connection: Connection, **values) -> Ran:
        """Run it on `connection`, in its transaction if it is in one."""
        compiled = self.for_dialect(connection.dialect)
        result = connection.exec_driver_sql(
            compiled.text, self.params(compiled, values)
        )
        rows = result.fetchall() if self.columns else []
        return Ran(self.rows(compiled, rows), result.rowcount)

    @staticmethod
    def params(compiled: Compiled, values: dict) -> dict | tuple:
        """The driver's parameters, from the values given by name."""
        params = dict(compiled.literals)
        for name in compiled.parameters:
            params[name] = values[name]  # a KeyError names one not given
        for name, process in compiled.bind_processors:
            params[name] = process(params[name])
        if compiled.order is not None:
            return tuple(params[name] for name in compiled.order)
        return params

    def rows(self, compiled: Compiled, rows) -> list:
        """The driver's rows, as named tuples of processed values."""
        processors = compiled.result_processors
        return [
            self.row_type(
                *(
                    value if process is None else process(value)
                    for value, process in zip(values, processors)
                )
            )
            for values in rows
        ]
