"""The spec, fuzzed: schemathesis sends generated requests to every operation of
each feature's OpenAPI document and checks every answer against it."""

import pytest
import schemathesis
from hypothesis import strategies as st

from myapp.books.models import isbn13
from myapp.pagination import CURSOR

# Generated ISBNs come from a range the tests' own serial numbers never reach.
ISBN13 = st.integers(10**8, 10**9 - 1).map(isbn13)
schemathesis.openapi.format("isbn", ISBN13)


def books_on_loan(request):
    """A book on loan."""
    add_book, member = (
        request.getfixturevalue(name) for name in ("add_book", "member")
    )
    return lambda app: app.test_client().post(
        f"/books/{add_book()['id']}/loans", headers=member.headers
    )


def a_container(request):
    """A site with a freezer holding a container."""
    add, freezer = (request.getfixturevalue(name) for name in ("add", "freezer"))
    add(f"/sites/freezers/{freezer['id']}/containers", {"description": "Box"})
    return lambda app: None


def nothing(request):
    return lambda app: None


# feature: (data made before fuzzing, the role whose token replaces any token sent)
FEATURES = {
    "books": (books_on_loan, "staff"),
    "users": (nothing, "admin"),
    "sites": (a_container, "staff"),
}


@pytest.fixture(params=list(FEATURES))
def feature(request):
    return request.param


@pytest.fixture
def feature_schema(request, make_app, feature):
    """The spec of an app with the feature's data, and a budget fuzzing cannot
    exhaust."""
    make_data, _ = FEATURES[feature]
    after_app = make_data(request)
    app = make_app(RATELIMIT_DEFAULT="100000 per hour")
    after_app(app)
    return schemathesis.openapi.from_wsgi(f"/{feature}/openapi.json", app)


@pytest.fixture
def caller(request, feature):
    return request.getfixturevalue(FEATURES[feature][1])


feature_api = schemathesis.pytest.from_fixture("feature_schema")


@feature_api.parametrize()
def test_every_feature_api_conforms_to_its_spec(case, caller):
    # Where the case sends a token, it is a real caller's (staff for books and
    # sites, admin for users); cases that leave the header out on purpose must
    # get a 401.
    if case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = caller.headers["Authorization"]
    # A cursor is minted by the server (signed), as a token is: a generated one
    # that its schema allows is left out, and one it does not must get a 400.
    cursor = (case.query or {}).get("cursor")
    if isinstance(cursor, str) and len(cursor) <= CURSOR["maxLength"]:
        del case.query["cursor"]
    case.call_and_validate()
