"""Set-based bulk loads for the bench: every row is made by PostgreSQL itself
(INSERT ... SELECT over generate_series), never one HTTP call or INSERT per row.

The catalog grows in place: 1k books, then up to 100k, then up to 1M, each book
with `times_borrowed` loans on record (about one per book on average, a few books
far more), so a scale is measured on the same rows as the smaller ones plus more.
"""

import time

import psycopg
from argon2 import PasswordHasher

MEMBERS = 1000
PASSWORD = "bench-password-1"
# Exactly SEARCH_MATCHES books carry the search term at every scale, spread over
# the catalog, so `q` returns the same result size whatever the table's size.
SEARCH_TERM = "zanzibar"
SEARCH_MATCHES = 200
SITES = 10_000

# A title and author made from a book's number, deterministic and varied; SQL
# templates over the column or variable holding the number.
TITLE = (
    "(ARRAY['The Silent', 'A Winter', 'The Last', 'Northern', 'The Glass',"
    " 'Hidden', 'The Long', 'Broken', 'The Paper', 'Distant'])[{n} % 10 + 1]"
    " || ' ' || (ARRAY['Harbour', 'Garden', 'Letters', 'River', 'Orchard',"
    " 'Station', 'Archive', 'Lantern', 'Atlas', 'Meadow', 'Tide'])[{n} % 11 + 1]"
    " || ', volume ' || {n}"
)
AUTHOR = (
    "(ARRAY['Ada', 'Bruno', 'Chiara', 'Dmitri', 'Elif', 'Farid', 'Greta',"
    " 'Hiro', 'Ines', 'Jonas', 'Kemal', 'Lena', 'Mateo'])[{n} % 13 + 1]"
    " || ' ' || (ARRAY['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Novak',"
    " 'Haddad', 'Rossi', 'Kowalski', 'Silva', 'Brennan', 'Varga', 'Ito',"
    " 'Duarte', 'Nakamura', 'Petrov', 'Quinn', 'Sato'])[{n} % 17 + 1]"
)
# ISBN-13 with prefix 978 and the book's number, its check digit computed.
ISBN = """'978' || lpad({n}::text, 9, '0') || ((10 - (
    SELECT sum(substr('978' || lpad({n}::text, 9, '0'), i, 1)::int
               * CASE WHEN i % 2 = 0 THEN 3 ELSE 1 END)
    FROM generate_series(1, 12) AS i) % 10) % 10)::text"""
# Most books borrowed 0-2 times; one in a thousand 100-196 times.
TIMES_BORROWED = "CASE WHEN {n} % 1000 = 0 THEN 100 + {n} % 97 ELSE {n} % 3 END"


def load_users(db: psycopg.Connection) -> dict:
    """MEMBERS members (ids 1..MEMBERS) and one staff account, all with PASSWORD
    (hashed once: Argon2 per row would dominate the load)."""
    password_hash = PasswordHasher().hash(PASSWORD)
    # Lowercase ASCII addresses: each is its own canonical form (users.models).
    db.execute(
        """INSERT INTO users (email, email_canonical, name, role, password_hash,
                              created_at, updated_at)
        SELECT 'member' || n || '@bench.example', 'member' || n || '@bench.example',
               'Member ' || n, 'member', %(hash)s, now(), now()
        FROM generate_series(1, %(members)s) AS n""",
        {"hash": password_hash, "members": MEMBERS},
    )
    db.execute(
        """INSERT INTO users (email, email_canonical, name, role, password_hash,
                              created_at, updated_at)
        VALUES ('staff@bench.example', 'staff@bench.example', 'Bench Staff', 'staff',
                %s, now(), now())""",
        (password_hash,),
    )
    return {"members": MEMBERS, "staff": 1}


def load_books(db: psycopg.Connection, first: int, last: int) -> dict:
    """Books first..last with their (returned) loans, then the search term moved
    so that exactly SEARCH_MATCHES books carry it. Numbers are ints of ours,
    formatted into the SQL."""
    started = time.perf_counter()
    db.execute(
        f"""INSERT INTO books (id, title, author, isbn, published_year, copies_total,
                copies_available, times_borrowed, created_at, updated_at)
        SELECT n, {TITLE.format(n="n")}, {AUTHOR.format(n="n")},
               {ISBN.format(n="n")}, 1900 + n % 125, 3, 3,
               {TIMES_BORROWED.format(n="n")}, now() - n * interval '1 second', now()
        FROM generate_series({first:d}, {last:d}) AS n"""
    )
    db.execute(
        f"""INSERT INTO loans (book_id, user_id, borrowed_at, due_at, returned_at)
        SELECT b.id, 1 + (b.id * 31 + k) % {MEMBERS:d}, t, t + interval '14 days',
               t + interval '7 days'
        FROM books AS b
        CROSS JOIN LATERAL generate_series(1, b.times_borrowed) AS k
        CROSS JOIN LATERAL (
            SELECT now() - ((b.id + k) % 700) * interval '1 day' AS t
        ) AS moment
        WHERE b.id BETWEEN {first:d} AND {last:d}"""
    )
    db.execute(
        "SELECT setval(pg_get_serial_sequence('books', 'id'), "
        "(SELECT max(id) FROM books))"
    )
    place_search_term(db, last)
    return {"load_s": round(time.perf_counter() - started, 2)}


def place_search_term(db: psycopg.Connection, books: int) -> None:
    step = max(1, books // SEARCH_MATCHES)
    db.execute(
        f"UPDATE books SET title = {TITLE.format(n='id')} "
        f"WHERE lower(title) LIKE '%{SEARCH_TERM}%'"
    )
    db.execute(
        "UPDATE books SET title = 'The Zanzibar Notebooks, volume ' || id "
        f"WHERE id % {step:d} = 0 AND id <= {step * SEARCH_MATCHES:d}"
    )


def load_sites(db: psycopg.Connection) -> dict:
    """SITES sites, each with a freezer and a computer."""
    started = time.perf_counter()
    db.execute(f"""INSERT INTO sites (id, name, country, created_at, updated_at)
        SELECT n, 'Lab site ' || n, (ARRAY['NO', 'DE', 'JP', 'BR', 'KE'])[n % 5 + 1],
               now(), now()
        FROM generate_series(1, {SITES:d}) AS n""")
    for table, name in (("freezers", "Freezer"), ("computers", "Computer")):
        db.execute(f"""INSERT INTO {table} (name, site_id, created_at, updated_at)
            SELECT '{name} ' || n, n, now(), now()
            FROM generate_series(1, {SITES:d}) AS n""")
    db.execute(
        "SELECT setval(pg_get_serial_sequence('sites', 'id'), "
        "(SELECT max(id) FROM sites))"
    )
    elapsed = round(time.perf_counter() - started, 2)
    return {"sites": SITES, "instruments": 2 * SITES, "load_s": elapsed}


def analyze(db: psycopg.Connection) -> None:
    """Fresh planner statistics and visibility maps, as autovacuum would leave
    them on a live server."""
    db.execute("VACUUM ANALYZE")


def counts(db: psycopg.Connection) -> dict:
    books, loans = db.execute(
        "SELECT (SELECT count(*) FROM books), (SELECT count(*) FROM loans)"
    ).fetchone()
    return {"books": books, "loans": loans}
