"""Commands for operators: `flask --app myapp users create-admin EMAIL`, and
`flask --app myapp seed` for demo data in development."""

import json
import os
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from myapp.auth import Identity
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel, isbn13
from myapp.sites.containers import ContainerModel
from myapp.sites.instruments import ComputerModel, FreezerModel
from myapp.sites.models import SiteModel
from myapp.db import sql
from myapp.transactions import commit
from myapp.errors import ApiError
from myapp.users.models import UserModel

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
def create_admin(email: str, name: str, password_stdin: bool) -> None:
    """Create an admin account (the first one, typically)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = UserModel.create(
            {"email": email, "name": name, "password": password}, role="admin"
        )
        commit()
    except ApiError as error:
        problems = "; ".join(f"{d['field']} {d['problem']}" for d in error.details)
        raise click.ClickException(
            f"{error.message}{': ' + problems if problems else ''}"
        )
    click.echo(f"Created admin {user.email} (id {user.id}).")


DEMO_PASSWORD = "demo password 123"
DEMO_USERS = [
    ("admin@example.com", "Ada Admin", "admin"),
    ("staff@example.com", "Sam Staff", "staff"),
    ("member@example.com", "Mia Member", "member"),
    ("reader@example.com", "Rex Reader", "member"),
]
DEMO_BOOKS = [
    ("Pride and Prejudice", "Jane Austen", 1813, 3),
    ("Emma", "Jane Austen", 1815, 2),
    ("Persuasion", "Jane Austen", 1817, 1),
    ("Frankenstein", "Mary Shelley", 1818, 2),
    ("Moby-Dick", "Herman Melville", 1851, 2),
    ("Middlemarch", "George Eliot", 1871, 1),
    ("Anna Karenina", "Leo Tolstoy", 1878, 2),
    ("The Brothers Karamazov", "Fyodor Dostoevsky", 1880, 1),
    ("Dracula", "Bram Stoker", 1897, 3),
    ("Heart of Darkness", "Joseph Conrad", 1899, 2),
    ("Ulysses", "James Joyce", 1922, 1),
    ("Mrs Dalloway", "Virginia Woolf", 1925, 2),
    ("The Great Gatsby", "F. Scott Fitzgerald", 1925, 4),
    ("To the Lighthouse", "Virginia Woolf", 1927, 1),
    ("Brave New World", "Aldous Huxley", 1932, 2),
    ("Nineteen Eighty-Four", "George Orwell", 1949, 3),
]
# (site, country, freezers with their containers, computers with their MACs)
DEMO_SITES = [
    (
        "Cambridge Genomics Lab",
        "United Kingdom",
        {"Minus Eighty A": ["Plasmid box 1", "Plasmid box 2"], "Liquid N2": []},
        {"Sequencer PC": "00:1a:2b:3c:4d:5e", "Bench laptop": None},
    ),
    (
        "Boston Cell Biology",
        "United States",
        {"Minus Twenty": ["Antibody rack"]},
        {"Microscope PC": "00:1a:2b:3c:4d:5f"},
    ),
]
# (borrower, book title, returned?) - some history, so popular books differ.
DEMO_LOANS = [
    ("member@example.com", "Dracula", True),
    ("reader@example.com", "Dracula", True),
    ("member@example.com", "Emma", False),
    ("reader@example.com", "Dracula", False),
    ("reader@example.com", "Nineteen Eighty-Four", False),
    ("member@example.com", "Nineteen Eighty-Four", True),
]


@click.command("seed")
@with_appcontext
def seed() -> None:
    """Load demo users, books, loans and lab sites; running it again adds nothing
    twice."""
    if current_app.config["MYAPP_ENV"] == "production":
        raise click.ClickException(
            "seed loads accounts with public passwords; not here"
        )
    users, books = load_demo_data()
    click.echo(f"Demo data ready: {len(users)} users (password {DEMO_PASSWORD!r}),")
    click.echo(f"{len(books)} books and their loans, and lab sites.")


def load_demo_data() -> tuple[dict, dict]:
    """The demo users, books and loans, added where missing and committed."""
    users = {email: seed_user(email, name, role) for email, name, role in DEMO_USERS}
    books = {
        title: seed_book(number, title, author, year, copies)
        for number, (title, author, year, copies) in enumerate(DEMO_BOOKS, start=1)
    }
    if not sql.session.scalar(select(LoanModel.id).limit(1)):
        for email, title, returned in DEMO_LOANS:
            loan = LoanModel.create(books[title].id, users[email].id)
            if returned:  # by its borrower
                LoanModel.give_back(loan.id, Identity(loan.user_id, "member", ""))
    if not sql.session.scalar(select(SiteModel.id).limit(1)):
        for name, country, freezers, computers in DEMO_SITES:
            seed_site(name, country, freezers, computers)
    commit()
    return users, books


def seed_site(name: str, country: str, freezers: dict, computers: dict) -> None:
    site = SiteModel.create({"name": name, "country": country})
    for freezer_name, contents in freezers.items():
        freezer = FreezerModel.create(site.id, {"name": freezer_name})
        for description in contents:
            ContainerModel.create(freezer.id, {"description": description})
    for computer_name, mac in computers.items():
        ComputerModel.create(site.id, {"name": computer_name, "mac": mac})


def seed_user(email: str, name: str, role: str) -> UserModel:
    existing = UserModel.by_email(email)
    if existing is not None:
        return existing
    data = {"email": email, "name": name, "password": DEMO_PASSWORD}
    return UserModel.create(data, role=role)


def seed_book(number: int, title: str, author: str, year: int, copies: int):
    isbn = isbn13(number)
    existing = sql.session.scalars(
        select(BookModel).where(BookModel.isbn == isbn)
    ).first()
    if existing is not None:
        return existing
    data = {
        "title": title,
        "author": author,
        "isbn": isbn,
        "published_year": year,
        "copies_total": copies,
    }
    return BookModel.create(data)


@click.command("export-clients")
@click.option("--out", default="clients", show_default=True, help="Folder to write to.")
@with_appcontext
def export_clients(out: str) -> None:
    """Write the Postman collection and api.http from the OpenAPI document."""
    from myapp import clients  # only this command needs them, never a worker

    os.makedirs(out, exist_ok=True)
    collection = clients.postman_collection(current_app)
    with open(os.path.join(out, "myapp.postman_collection.json"), "w") as handle:
        json.dump(collection, handle, indent=2)
        handle.write("\n")
    with open(os.path.join(out, "api.http"), "w") as handle:
        handle.write(clients.http_file(current_app) + "\n")
    click.echo(f"Wrote {out}/myapp.postman_collection.json and {out}/api.http")


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(seed)
    app.cli.add_command(export_clients)
