"""A typical Flask-RESTX app, built the way the guides this project grew from build
one: Flask-SQLAlchemy's model and session, a RESTX namespace with `marshal_with`,
`get_or_404`, and Flask-Limiter on Redis counting every request by address.

Served by `bench/run.py` under gunicorn, as those guides deploy it."""

import os

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_restx import Api, Resource, fields
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace(
    "postgresql://", "postgresql+psycopg://", 1
)
db = SQLAlchemy(app)
limiter = Limiter(
    get_remote_address,
    app=app,
    default_limits=[os.environ["RATELIMIT_DEFAULT"]],
    storage_uri=os.environ["REDIS_URL"],
)
api = Api(app, title="books (typical Flask-RESTX)", doc=False)
books = api.namespace("books")


class Book(db.Model):
    __tablename__ = "books"

    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(300))
    author = db.Column(db.String(200))
    isbn = db.Column(db.String(13))
    published_year = db.Column(db.Integer)
    copies_total = db.Column(db.Integer)
    copies_available = db.Column(db.Integer)
    times_borrowed = db.Column(db.Integer)
    created_at = db.Column(db.DateTime(timezone=True))
    updated_at = db.Column(db.DateTime(timezone=True))


book_model = api.model(
    "Book",
    {
        "id": fields.Integer,
        "title": fields.String,
        "author": fields.String,
        "isbn": fields.String,
        "published_year": fields.Integer,
        "copies_total": fields.Integer,
        "copies_available": fields.Integer,
        "times_borrowed": fields.Integer,
        "created_at": fields.DateTime,
        "updated_at": fields.DateTime,
    },
)


@books.route("/<int:book_id>")
class BookResource(Resource):
    @books.marshal_with(book_model)
    def get(self, book_id):
        return db.get_or_404(Book, book_id)
