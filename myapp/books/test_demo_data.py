"""Demo data: the seed command and the dev server load it once, never in
production."""

from sqlalchemy import func, select

from myapp.testing import sign_in
from myapp.books.loans import LoanModel
from myapp.books.models import BookModel
from myapp.db import sql
from myapp.users.models import UserModel
from myapp.books.testing import book_total


def test_seed_loads_demo_data_once(app):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed"])
        assert result.exit_code == 0, result.output
        assert "Demo data ready: 4 users" in result.output
    with app.app_context():
        from myapp.sites.containers import ContainerModel
        from myapp.sites.instruments import ComputerModel
        from myapp.sites.models import SiteModel

        counts = [
            sql.session.scalar(select(func.count()).select_from(model))
            for model in (UserModel, BookModel, LoanModel, SiteModel)
        ]
        assert counts == [4, 16, 6, 2]
        for model, expected in ((ComputerModel, 3), (ContainerModel, 3)):
            assert (
                sql.session.scalar(select(func.count()).select_from(model)) == expected
            )
        top = BookModel.popular(1)[0]
        assert (top["title"], top["times_borrowed"]) == ("Dracula", 3)
    client = app.test_client()
    sign_in(client, "member@example.com", "demo password 123")


def test_the_dev_server_loads_demo_data(app):
    """devserver.py (make run) seeds through this function."""
    from myapp.cli import load_demo_data

    with app.app_context():
        users, books = load_demo_data()
    assert len(users) == 4 and len(books) == 16
    assert client_sees_books(app) == 16


def client_sees_books(app) -> int:
    return app.test_client().get("/books/").get_json()["total"]


def test_seed_refuses_production(app):
    app.config["MYAPP_ENV"] = "production"
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code != 0 and "public passwords" in result.output
    assert book_total(app) == 0
