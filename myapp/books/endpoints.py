"""/books: the catalog, the most borrowed books, and loans."""

from myapp.api import Resource, make_api, no_content
from myapp.auth import current_identity
from myapp.books.loans import LoanModel
from myapp.books.models import POPULAR_MAX, BookModel
from myapp.conditional import (
    created,
    delete_if_match,
    single_response,
    update_if_match,
)
from myapp.pagination import ListParams, QueryParams, list_schema, page_response
from myapp.schema import (
    ID,
    json_body,
    object_schema,
    request_body,
    text_schema,
    validate,
)

feature = make_api(
    "books",
    "myapp books",
    "The library catalog, loans, and the most borrowed books",
    tags={
        "books": "The catalog: anyone reads it, staff change it",
        "loans": "Borrowing and returning copies (signed-in members)",
    },
)
blueprint, ns = feature.blueprint, feature.ns

book_model = feature.model("Book", BookModel.read_schema)
book_write_model = feature.model("BookWrite", BookModel.write_schema)
book_patch_model = feature.model("BookPatch", BookModel.patch_schema)
book_page_model = feature.model("BookPage", list_schema(BookModel.read_schema))
popular_model = feature.model(
    "PopularBooks",
    object_schema(
        "PopularBooks",
        {
            "items": {"type": "array", "items": BookModel.read_schema},
            "limit": {"type": "integer"},
        },
    ),
)
loan_model = feature.model("Loan", LoanModel.read_schema)
loan_write_model = feature.model("LoanWrite", LoanModel.write_schema)
loan_page_model = feature.model("LoanPage", list_schema(LoanModel.read_schema))

BOOK_LIST = ListParams(
    ["title", "author", "published_year", "times_borrowed", "created_at"],
    "title",
    filters={
        "q": text_schema(100, description="Substring of the title or author, any case"),
        "author": text_schema(200, description="The author, any case"),
        "available": {
            "type": "boolean",
            "description": "true: books with a copy to borrow; false: none left",
        },
    },
)
LOAN_LIST = ListParams(
    ["id", "borrowed_at", "due_at", "returned_at"],
    "-borrowed_at",
    filters={
        "open": {"type": "boolean", "description": "true: not yet returned"},
        "user_id": {**ID, "description": "The borrower (staff see everyone's loans)"},
    },
)
POPULAR = QueryParams(
    {"limit": {"type": "integer", "minimum": 1, "maximum": POPULAR_MAX, "default": 10}}
)


@feature.route("/")
class Books(Resource):
    @feature.lists(book_page_model, BOOK_LIST, "A page of books")
    def get(self):
        """List the catalog."""
        query = BOOK_LIST.parse()
        return page_response(BookModel.list(query).json(BookModel.as_json), query)

    @feature.requires("staff")
    @feature.expects(book_write_model)
    @feature.creates(book_model, "Added to the catalog")
    @feature.errors(409)
    def post(self):
        """Add a book (staff). 409 when the ISBN is already in the catalog."""
        book = BookModel.create(json_body()).as_json()
        return created(book, feature.api.url_for(Book, book_id=book["id"]))


@feature.route("/popular")
class Popular(Resource):
    @feature.query(POPULAR)
    @feature.response(200, "The most borrowed books, most first", popular_model)
    def get(self):
        """The most borrowed books (cached until the next change to the catalog or
        its loans; if Redis failed as one committed, for 60 s at most)."""
        limit = POPULAR.parse().get("limit", 10)
        return {"items": BookModel.popular(limit), "limit": limit}


@feature.route("/<int:book_id>")
class Book(Resource):
    @feature.reads(book_model, "The book")
    def get(self, book_id):
        """One book, with its available copies and times borrowed."""
        return single_response(BookModel.read_json_or_404(book_id))

    @feature.requires("staff")
    @feature.expects(book_write_model)
    @feature.updates(book_model, "Replaced")
    @feature.errors(409)
    def put(self, book_id):
        """Replace a book (staff). copies_total may not drop below copies on loan."""
        return update_if_match(BookModel, book_id, replace=True)

    @feature.requires("staff")
    @feature.expects(book_patch_model)
    @feature.updates(book_model, "Updated")
    @feature.errors(409)
    def patch(self, book_id):
        """Change some of a book's fields (staff)."""
        return update_if_match(BookModel, book_id, replace=False)

    @feature.requires("staff")
    @feature.deletes("Deleted, with its returned loans")
    @feature.errors(409)
    def delete(self, book_id):
        """Remove a book (staff). 409 while a copy is on loan."""
        delete_if_match(BookModel, book_id)
        return no_content()


@feature.route("/<int:book_id>/loans", tag="loans")
class BookLoans(Resource):
    @feature.requires()
    @feature.idempotent
    @feature.expects(loan_write_model, required=False)
    @feature.creates(loan_model, "Borrowed: due back in {LOAN_DAYS} days")
    @feature.errors(404, 409)
    def post(self, book_id):
        """Borrow a copy. 409 when none is left, you already have this book, or you
        have {MAX_OPEN_LOANS} books on loan. Honours Idempotency-Key.

        The body is optional: the book is in the URL and the borrower is you."""
        if request_body():
            validate(LoanModel.write_schema, json_body())
        loan = LoanModel.as_json(LoanModel.create(book_id, current_identity().user_id))
        return created(loan, feature.api.url_for(Loan, loan_id=loan["id"]))


@feature.route("/loans/", tag="loans")
class Loans(Resource):
    @feature.requires()
    @feature.lists(
        loan_page_model, LOAN_LIST, "A page of loans: yours, or everyone's for staff"
    )
    def get(self):
        """Your loans (staff: everyone's)."""
        query = LOAN_LIST.parse()
        loans = LoanModel.list(query, current_identity())
        return page_response(loans.json(LoanModel.as_json), query)


@feature.route("/loans/<int:loan_id>", tag="loans")
class Loan(Resource):
    @feature.requires()
    @feature.reads(loan_model, "The loan")
    def get(self, loan_id):
        """One loan (its borrower, or staff)."""
        return single_response(LoanModel.get_for(loan_id, current_identity()).as_json())


@feature.route("/loans/<int:loan_id>/return", tag="loans")
class LoanReturn(Resource):
    @feature.requires()
    @feature.response(200, "Returned", loan_model, ["ETag"])
    @feature.errors(404, 409)
    def post(self, loan_id):
        """Return a loan's copy (its borrower, or staff). 409 if already returned."""
        loan = LoanModel.give_back(loan_id, current_identity())
        return single_response(LoanModel.as_json(loan))
