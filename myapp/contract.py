"""The world of the contract test (myapp/test_contract.py): the API's whole document,
one of each resource for every request to name, a body each write accepts, and a
call of any operation as its actor (myapp/provocations.py makes each status
happen)."""

import uuid
from dataclasses import dataclass


from myapp.testing import Account
from myapp import create_app
from myapp.clients import operations
from myapp.openapi import WHOLE_API
from myapp.schema import MAX_ID
from myapp.testing import book_body

DOCUMENT = (
    create_app(
        "testing", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "REDIS_URL": "redis://x"}
    )
    .extensions["myapp.openapi"]
    .documents[WHOLE_API]
)
OPERATIONS = operations(DOCUMENT)  # operationId -> (METHOD, path, operation)


@dataclass
class World:
    """What every operation's requests can name: one of each resource."""

    app: object
    client: object
    admin: Account
    member: Account
    book: dict  # no copy on loan
    loan: dict  # the member's open loan of another book
    site: dict
    freezer: dict
    computer: dict
    container: dict
    session_id: str  # another session of the member's

    def post(self, path: str, body: dict, who: Account) -> dict:
        response = self.client.post(path, json=body, headers=who.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()


def path_values(world: World) -> dict:
    return {
        "book_id": world.book["id"],
        "loan_id": world.loan["id"],
        "user_id": world.member.id,
        "site_id": world.site["id"],
        "freezer_id": world.freezer["id"],
        "computer_id": world.computer["id"],
        "container_uuid": world.container["uuid"],
        "session_id": world.session_id,
    }


# Values no resource has. PUT /sites/<id> creates any id it is given, so only an
# id past the database's range (a routing 404) is missing for it.
MISSING = {
    "session_id": "no-such-session",
    "container_uuid": str(uuid.UUID(int=0)),
}
PUT_SITE_MISSING = MAX_ID + 1

# A body each writing operation accepts.
BODIES = {
    "post_users": lambda w: {
        "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a long enough password",
        "name": "New",
    },
    "post_tokens": lambda w: {"email": w.member.email, "password": w.member.password},
    "patch_me": lambda w: {"name": "Renamed"},
    "patch_user": lambda w: {"name": "Renamed"},
    "post_books": lambda w: book_body(),
    "put_book": lambda w: book_body(copies_total=3),
    "patch_book": lambda w: {"copies_total": 4},
    "post_book_loans": lambda w: {},
    "post_sites": lambda w: {"name": "Another Lab"},
    "put_site": lambda w: {"name": "Contract Lab", "country": "Norway"},
    "patch_site": lambda w: {"country": "Chile"},
    "post_site_freezers": lambda w: {"name": "F2"},
    "put_freezer": lambda w: {"name": "F3", "site_id": w.site["id"]},
    "patch_freezer": lambda w: {"name": "F4"},
    "post_site_computers": lambda w: {"name": "C2"},
    "put_computer": lambda w: {"name": "C3", "site_id": w.site["id"]},
    "patch_computer": lambda w: {"name": "C4"},
    "post_freezer_containers": lambda w: {"description": "D"},
    "patch_container": lambda w: {"description": "E"},
}


# What a successful delete removes, where the world's own resource cannot go.
DELETABLE = {
    "delete_site": lambda w: {
        "site_id": w.post("/sites/", {"name": "Empty"}, w.admin)["id"]
    },
    "delete_freezer": lambda w: {
        "freezer_id": w.post(
            f"/sites/{w.site['id']}/freezers", {"name": "Empty"}, w.admin
        )["id"]
    },
    "delete_user": lambda w: {
        "user_id": w.post("/users/", BODIES["post_users"](w), w.admin)["id"]
    },
}


def actor(world: World, operation: dict) -> dict:
    """The headers of whoever may call the operation: nobody for a public one, the
    member's refresh token where only that is taken, the admin where a role
    above member is needed, else the member."""
    schemes = {name for option in operation["security"] for name in option}
    if not schemes:
        return {}
    if schemes == {"refreshToken"}:
        return {"Authorization": f"Bearer {world.member.refresh_token}"}
    if "403" in operation["responses"]:
        return world.admin.headers
    return world.member.headers


def call(world, operation_id, *, client=None, path=None, headers=None, **kwargs):
    """Send the operation's request: the world's path values (or `path`'s), its
    actor's token, its body (or `json`/`data` from kwargs), extra headers."""
    method, template, operation = OPERATIONS[operation_id]
    values = {**path_values(world), **(path or {})}
    url = template.format(**values)
    if "requestBody" in operation and not ({"json", "data"} & set(kwargs)):
        kwargs["json"] = BODIES[operation_id](world)
    sent = {**actor(world, operation), **(headers or {})}
    return (client or world.client).open(url, method=method, headers=sent, **kwargs)
