"""A list's rows in its order, one page at a time: by OFFSET for a page number, or,
for a cursor, from just after the row the previous page ended on (keyset paging).

OFFSET reads and drops every row before the page, so page 25,000 of a million
books took over a second; a keyset page starts at its first row through the sort
column's index, so every page costs about what the first does.

The order is the sort column, then tiebreak columns that make it total (the
primary key). NULLs sort as the largest values on every database (PostgreSQL's
default; SQLite would put them first): ascending they come last, descending
first. A keyset page over a nullable column is read in two parts, the rows with a
value and the rows without, each in an order its index serves.
"""

from sqlalchemy import Select, tuple_

from myapp.pagination import ListQuery, bad_cursor


def sort_order(columns: list, descending: bool) -> list:
    first, rest = columns[0], columns[1:]
    if descending:
        return [first.desc().nulls_first(), *(column.desc() for column in rest)]
    return [first.asc().nulls_last(), *(column.asc() for column in rest)]


def ordered_rows(statement: Select, columns: list, query: ListQuery, run, nullable):
    """The rows of `query`'s page of `statement`, ordered by `columns`; `run`
    executes a statement and gives its rows. `nullable`: whether the sort column
    (the first) can be NULL."""
    if query.after is None:
        order = sort_order(columns, query.descending)
        paged = statement.order_by(*order).limit(query.per_page).offset(query.offset)
        return list(run(paged))
    if len(query.after) != len(columns):  # given by another version of this list
        raise bad_cursor("is not a cursor this API gave")
    rows: list = []
    for part in keyset_parts(statement, columns, query, nullable):
        rows += run(part.limit(query.per_page - len(rows)))
        if len(rows) == query.per_page:
            break
    return rows


def keyset_parts(statement: Select, columns: list, query: ListQuery, nullable):
    """The statements that read, in order, the rows after `query.after` (the sort
    values of the previous page's last row)."""
    first, rest = columns[0], columns[1:]
    value, ties = query.after[0], query.after[1:]

    def ordered(select: Select, by: list) -> Select:
        return select.order_by(*(c.desc() if query.descending else c for c in by))

    def beyond(by: list, values) -> object:
        if query.descending:
            return tuple_(*by) < tuple_(*values)
        return tuple_(*by) > tuple_(*values)

    if not nullable:
        return [ordered(statement.where(beyond(columns, query.after)), columns)]
    valued = statement.where(first.is_not(None))
    unvalued = ordered(statement.where(first.is_(None)), rest)
    if value is None:  # the previous page ended among the NULLs
        parts = [unvalued.where(beyond(rest, ties))]
        return (parts + [ordered(valued, columns)]) if query.descending else parts
    parts = [ordered(valued.where(beyond(columns, query.after)), columns)]
    return parts if query.descending else parts + [unvalued]
