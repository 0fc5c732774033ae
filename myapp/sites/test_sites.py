"""The sites feature on PostgreSQL and SQLite: sites (with the PUT upsert), freezers,
computers (MAC forms and uniqueness), containers, safe deletes, instruments."""

import threading
import uuid

import pytest
import requests
import schemathesis
from sqlalchemy import func, select

from myapp.db import sql
from myapp.pagination import list_schema
from myapp.sites.containers import ContainerModel
from myapp.sites.instruments import INSTRUMENT_SCHEMA, ComputerModel, FreezerModel
from myapp.sites.models import SiteModel
from myapp.testing import assert_error, assert_valid

SITE = {
    "name": "Cambridge Lab",
    "contact": "Dr. Rosalind",
    "address": "1 Tennis Court Road",
    "state_or_region": "Cambridgeshire",
    "country": "United Kingdom",
    "postcode_or_zip": "CB2 1QW",
}


@pytest.fixture
def add(client, staff):
    """POST as staff; returns the created JSON."""

    def post(path: str, body: dict) -> dict:
        response = client.post(path, json=body, headers=staff.headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return post


@pytest.fixture
def site(add):
    return add("/sites/", SITE)


def count(app, model) -> int:
    with app.app_context():
        return sql.session.scalar(select(func.count()).select_from(model))


# --- Sites


def test_staff_create_a_site(client, staff):
    response = client.post("/sites/", json=SITE, headers=staff.headers)
    assert response.status_code == 201
    body = response.get_json()
    assert_valid(SiteModel.read_schema, body)
    assert {key: body[key] for key in SITE} == SITE


def test_a_site_needs_only_a_name(add):
    body = add("/sites/", {"name": "Field station"})
    assert body["country"] is None and body["contact"] is None


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "x", "country": 7}, {"country"}),
        ({"name": "x", "id": 5, "created_at": "now"}, {"id", "created_at"}),
        ({"name": "x", "address": "a\x00b"}, {"address"}),
    ],
)
def test_site_bodies_are_validated(app, client, staff, body, fields):
    response = client.post("/sites/", json=body, headers=staff.headers)
    problems = assert_error(response, 400, "validation_error")["details"]
    assert {problem["field"] for problem in problems} == fields
    assert count(app, SiteModel) == 0


@pytest.mark.parametrize("who, status", [("member", 403), (None, 401)])
def test_site_writes_need_staff(app, client, make_account, site, who, status):
    headers = make_account(who).headers if who else {}
    code = "forbidden" if status == 403 else "unauthorized"
    calls = [
        ("post", "/sites/"),
        ("put", f"/sites/{site['id']}"),
        ("patch", f"/sites/{site['id']}"),
        ("delete", f"/sites/{site['id']}"),
    ]
    for method, path in calls:
        response = getattr(client, method)(path, json={"name": "x"}, headers=headers)
        assert_error(response, status, code)
    assert count(app, SiteModel) == 1


def test_reading_sites_needs_a_signed_in_user(client, site, member):
    assert_error(client.get("/sites/"), 401, "unauthorized")
    assert_error(client.get(f"/sites/{site['id']}"), 401, "unauthorized")
    assert client.get(f"/sites/{site['id']}", headers=member.headers).status_code == 200


def test_read_a_site_with_an_etag(client, member, site):
    response = client.get(f"/sites/{site['id']}", headers=member.headers)
    assert response.get_json() == site
    cached = {**member.headers, "If-None-Match": response.headers["ETag"]}
    assert client.get(f"/sites/{site['id']}", headers=cached).status_code == 304
    assert_error(client.get("/sites/999999", headers=member.headers), 404, "not_found")


@pytest.mark.parametrize(
    "query, names, total",
    [
        ("", ["Boston", "Cambridge", "Oxford"], 3),
        ("country=united KINGDOM", ["Cambridge", "Oxford"], 2),
        ("q=BRIDGE", ["Cambridge"], 1),
        ("sort=-name", ["Oxford", "Cambridge", "Boston"], 3),
        ("sort=country&per_page=1", ["Cambridge"], 3),
        ("sort=id&per_page=2&page=2", ["Boston"], 3),
    ],
)
def test_sites_filter_sort_and_page(client, add, member, query, names, total):
    for name, country in (
        ("Cambridge", "United Kingdom"),
        ("Oxford", "United Kingdom"),
        ("Boston", "United States"),
    ):
        add("/sites/", {"name": name, "country": country})
    response = client.get(f"/sites/?{query}", headers=member.headers)
    body = response.get_json()
    assert_valid(list_schema(SiteModel.read_schema), body)
    assert [item["name"] for item in body["items"]] == names
    assert body["total"] == total
    assert 'rel="last"' in response.headers["Link"]


@pytest.mark.parametrize("query", ["sort=address", "per_page=0", "country=", "zip=1"])
def test_site_list_rejects_bad_params(client, member, query):
    assert_error(
        client.get(f"/sites/?{query}", headers=member.headers), 400, "bad_request"
    )


def test_put_creates_a_site_with_that_id_then_replaces_it(app, client, staff):
    created = client.put(
        "/sites/4242", json={"name": "New", "country": "NL"}, headers=staff.headers
    )
    assert created.status_code == 201
    assert created.get_json()["id"] == 4242
    replaced = client.put(
        "/sites/4242", json={"name": "Renamed"}, headers=staff.headers
    )
    assert replaced.status_code == 200
    body = replaced.get_json()
    assert_valid(SiteModel.read_schema, body)
    assert (body["name"], body["country"]) == ("Renamed", None)  # replaced whole
    assert count(app, SiteModel) == 1


def test_post_after_put_never_collides(client, staff, add):
    first = add("/sites/", {"name": "First"})
    ahead = first["id"] + 1  # the id the sequence would hand out next
    assert (
        client.put(
            f"/sites/{ahead}", json={"name": "Put"}, headers=staff.headers
        ).status_code
        == 201
    )
    later = [add("/sites/", {"name": f"Later {n}"})["id"] for n in range(3)]
    assert ahead not in later and len(set(later)) == 3


def test_put_validates_and_honours_if_match(app, client, staff, site):
    assert_error(
        client.put(f"/sites/{site['id']}", json={}, headers=staff.headers),
        400,
        "validation_error",
    )
    stale = {**staff.headers, "If-Match": '"not-the-etag"'}
    response = client.put(f"/sites/{site['id']}", json={"name": "X"}, headers=stale)
    assert_error(response, 412, "precondition_failed")
    missing = client.put(
        "/sites/777", json={"name": "X"}, headers={**staff.headers, "If-Match": "*"}
    )
    assert_error(missing, 412, "precondition_failed")
    assert count(app, SiteModel) == 1


def test_patch_a_site(client, staff, site):
    etag = client.get(f"/sites/{site['id']}", headers=staff.headers).headers["ETag"]
    response = client.patch(
        f"/sites/{site['id']}",
        json={"contact": None, "name": "Renamed"},
        headers={**staff.headers, "If-Match": etag},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["contact"], body["country"]) == (
        "Renamed",
        None,
        SITE["country"],
    )
    assert_error(
        client.patch(f"/sites/{site['id']}", json={}, headers=staff.headers),
        400,
        "validation_error",
    )
    assert_error(
        client.patch("/sites/999999", json={"name": "x"}, headers=staff.headers),
        404,
        "not_found",
    )
    response = client.patch(
        f"/sites/{site['id']}",
        json={"name": "Y"},
        headers={**staff.headers, "If-Match": etag},
    )
    assert_error(response, 412, "precondition_failed")


def test_delete_is_refused_naming_the_instruments(app, client, staff, site, add):
    freezer = add(f"/sites/{site['id']}/freezers", {"name": "Minus Eighty"})
    computer = add(f"/sites/{site['id']}/computers", {"name": "Sequencer PC"})
    response = client.delete(f"/sites/{site['id']}", headers=staff.headers)
    body = assert_error(response, 409, "conflict")
    assert {detail["field"] for detail in body["details"]} == {
        f"freezers.{freezer['id']}",
        f"computers.{computer['id']}",
    }
    assert "Minus Eighty" in str(body["details"])
    assert (
        count(app, SiteModel),
        count(app, FreezerModel),
        count(app, ComputerModel),
    ) == (1, 1, 1)
    client.delete(f"/sites/freezers/{freezer['id']}", headers=staff.headers)
    client.delete(f"/sites/computers/{computer['id']}", headers=staff.headers)
    assert (
        client.delete(f"/sites/{site['id']}", headers=staff.headers).status_code == 204
    )
    assert_error(
        client.delete(f"/sites/{site['id']}", headers=staff.headers), 404, "not_found"
    )


def test_site_delete_honours_if_match(app, client, staff, site):
    response = client.delete(
        f"/sites/{site['id']}", headers={**staff.headers, "If-Match": '"x"'}
    )
    assert_error(response, 412, "precondition_failed")
    assert count(app, SiteModel) == 1


# --- Freezers and computers (the same contract)

KINDS = ["freezers", "computers"]


@pytest.mark.parametrize("kind", KINDS)
def test_instruments_are_created_under_a_site(client, staff, member, site, add, kind):
    item = add(f"/sites/{site['id']}/{kind}", {"name": "Unit 1"})
    model = FreezerModel if kind == "freezers" else ComputerModel
    assert_valid(model.read_schema, item)
    assert item["site_id"] == site["id"]
    listed = client.get(f"/sites/{site['id']}/{kind}", headers=member.headers)
    assert_valid(list_schema(model.read_schema), listed.get_json())
    assert [each["id"] for each in listed.get_json()["items"]] == [item["id"]]
    single = client.get(f"/sites/{kind}/{item['id']}", headers=member.headers)
    assert single.get_json() == item and single.headers["ETag"]


@pytest.mark.parametrize("kind", KINDS)
def test_instrument_paths_with_unknown_ids_are_404(client, staff, member, kind):
    assert_error(
        client.get(f"/sites/999999/{kind}", headers=member.headers), 404, "not_found"
    )
    response = client.post(
        f"/sites/999999/{kind}", json={"name": "x"}, headers=staff.headers
    )
    assert_error(response, 404, "not_found")
    for method in ("get", "put", "patch", "delete"):
        response = getattr(client, method)(
            f"/sites/{kind}/999999",
            json={"name": "x", "site_id": 1},
            headers=staff.headers,
        )
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "body", [{}, {"name": ""}, {"name": "x", "site_id": 1}, {"name": "x", "id": 3}]
)
def test_instrument_creation_is_validated(app, client, staff, site, kind, body):
    response = client.post(
        f"/sites/{site['id']}/{kind}", json=body, headers=staff.headers
    )
    assert_error(response, 400, "validation_error")
    assert count(app, FreezerModel) + count(app, ComputerModel) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_instruments_move_between_sites_and_are_replaced(
    client, staff, site, add, kind
):
    other = add("/sites/", {"name": "Other"})
    item = add(f"/sites/{site['id']}/{kind}", {"name": "Unit"})
    moved = client.patch(
        f"/sites/{kind}/{item['id']}",
        json={"site_id": other["id"]},
        headers=staff.headers,
    )
    assert moved.status_code == 200 and moved.get_json()["site_id"] == other["id"]
    replaced = client.put(
        f"/sites/{kind}/{item['id']}",
        json={"name": "Renamed", "site_id": site["id"]},
        headers=staff.headers,
    )
    assert (replaced.get_json()["name"], replaced.get_json()["site_id"]) == (
        "Renamed",
        site["id"],
    )
    nowhere = client.patch(
        f"/sites/{kind}/{item['id']}", json={"site_id": 999999}, headers=staff.headers
    )
    assert_error(nowhere, 404, "not_found")
    for body in ({"name": "only"}, {}):
        method = "put" if body else "patch"
        response = getattr(client, method)(
            f"/sites/{kind}/{item['id']}", json=body, headers=staff.headers
        )
        assert_error(response, 400, "validation_error")
    stale = {**staff.headers, "If-Match": '"x"'}
    response = client.patch(
        f"/sites/{kind}/{item['id']}", json={"name": "Z"}, headers=stale
    )
    assert_error(response, 412, "precondition_failed")


@pytest.mark.parametrize("kind", KINDS)
def test_instrument_writes_need_staff(client, member, site, add, kind):
    item = add(f"/sites/{site['id']}/{kind}", {"name": "Unit"})
    response = client.post(
        f"/sites/{site['id']}/{kind}", json={"name": "x"}, headers=member.headers
    )
    assert_error(response, 403, "forbidden")
    for method in ("put", "patch", "delete"):
        response = getattr(client, method)(
            f"/sites/{kind}/{item['id']}", json={"name": "x"}, headers=member.headers
        )
        assert_error(response, 403, "forbidden")
    assert_error(client.get(f"/sites/{kind}/{item['id']}"), 401, "unauthorized")


@pytest.mark.parametrize(
    "sent",
    [
        "aa:bb:cc:dd:ee:ff",
        "AA:BB:CC:DD:EE:FF",
        "AA-BB-CC-DD-EE-FF",
        "aabb.ccdd.eeff",
        "AaBb.CcDd.EeFf",
    ],
)
def test_mac_forms_are_stored_in_one_form(add, site, sent):
    computer = add(f"/sites/{site['id']}/computers", {"name": "PC", "mac": sent})
    assert computer["mac"] == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize(
    "mac",
    [
        "aa:bb:cc:dd:ee",
        "aa:bb-cc:dd:ee:ff",
        "gg:bb:cc:dd:ee:ff",
        "aabbccddeeff",
        "aabb.ccdd.eeff.0011",
        12,
    ],
)
def test_bad_macs_are_400(app, client, staff, site, mac):
    response = client.post(
        f"/sites/{site['id']}/computers",
        json={"name": "PC", "mac": mac},
        headers=staff.headers,
    )
    body = assert_error(response, 400, "validation_error")
    assert body["details"][0]["field"] == "mac"
    assert count(app, ComputerModel) == 0


def test_macs_are_unique_in_any_spelling(app, client, staff, site, add):
    first = add(
        f"/sites/{site['id']}/computers", {"name": "One", "mac": "aa:bb:cc:dd:ee:ff"}
    )
    second = add(f"/sites/{site['id']}/computers", {"name": "Two"})
    for spelling in ("AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff"):
        response = client.post(
            f"/sites/{site['id']}/computers",
            json={"name": "Dup", "mac": spelling},
            headers=staff.headers,
        )
        assert_error(response, 409, "conflict")
        response = client.patch(
            f"/sites/computers/{second['id']}",
            json={"mac": spelling},
            headers=staff.headers,
        )
        assert_error(response, 409, "conflict")
    assert count(app, ComputerModel) == 2
    # Many computers may have no MAC; a computer may keep its own.
    add(f"/sites/{site['id']}/computers", {"name": "Three", "mac": None})
    same = client.patch(
        f"/sites/computers/{first['id']}",
        json={"mac": "AA:BB:CC:DD:EE:FF"},
        headers=staff.headers,
    )
    assert same.status_code == 200


def test_put_clears_an_omitted_mac(client, staff, site, add):
    computer = add(
        f"/sites/{site['id']}/computers", {"name": "PC", "mac": "00:11:22:33:44:55"}
    )
    response = client.put(
        f"/sites/computers/{computer['id']}",
        json={"name": "PC", "site_id": site["id"]},
        headers=staff.headers,
    )
    assert response.get_json()["mac"] is None


def test_instrument_lists_page_and_sort(client, member, site, add):
    for name in ("b", "c", "a"):
        add(f"/sites/{site['id']}/freezers", {"name": name})
    body = client.get(
        f"/sites/{site['id']}/freezers?sort=-name&per_page=2", headers=member.headers
    ).get_json()
    assert [item["name"] for item in body["items"]] == ["c", "b"] and body["total"] == 3
    response = client.get(
        f"/sites/{site['id']}/freezers?sort=site_id", headers=member.headers
    )
    assert_error(response, 400, "bad_request")


# --- Containers


@pytest.fixture
def freezer(add, site):
    return add(f"/sites/{site['id']}/freezers", {"name": "Minus Eighty"})


def test_a_container_gets_a_uuid_when_none_is_given(client, member, freezer, add):
    container = add(
        f"/sites/freezers/{freezer['id']}/containers", {"description": "Box 1"}
    )
    assert_valid(ContainerModel.read_schema, container)
    assert str(uuid.UUID(container["uuid"])) == container["uuid"]
    read = client.get(f"/sites/containers/{container['uuid']}", headers=member.headers)
    assert read.get_json() == container
    listed = client.get(
        f"/sites/freezers/{freezer['id']}/containers", headers=member.headers
    ).get_json()
    assert_valid(list_schema(ContainerModel.read_schema), listed)
    assert [item["uuid"] for item in listed["items"]] == [container["uuid"]]


def test_a_given_uuid_is_kept_in_lowercase_and_unique(
    app, client, staff, member, freezer, add
):
    given = str(uuid.uuid4()).upper()
    container = add(
        f"/sites/freezers/{freezer['id']}/containers",
        {"uuid": given, "description": "Box"},
    )
    assert container["uuid"] == given.lower()
    again = client.post(
        f"/sites/freezers/{freezer['id']}/containers",
        json={"uuid": given.lower(), "description": "Dup"},
        headers=staff.headers,
    )
    assert_error(again, 409, "conflict")
    assert (
        client.get(f"/sites/containers/{given}", headers=member.headers).status_code
        == 200
    )
    assert count(app, ContainerModel) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"uuid": "not-a-uuid", "description": "x"},
        {"description": ""},
        {},
        {"uuid": str(uuid.uuid4())},
    ],
)
def test_container_bodies_are_validated(app, client, staff, freezer, body):
    response = client.post(
        f"/sites/freezers/{freezer['id']}/containers", json=body, headers=staff.headers
    )
    assert_error(response, 400, "validation_error")
    assert count(app, ContainerModel) == 0


def test_container_update_and_delete(client, staff, member, freezer, add):
    container = add(
        f"/sites/freezers/{freezer['id']}/containers", {"description": "Box"}
    )
    path = f"/sites/containers/{container['uuid']}"
    updated = client.patch(path, json={"description": "Box 2"}, headers=staff.headers)
    assert updated.status_code == 200 and updated.get_json()["description"] == "Box 2"
    assert_error(
        client.patch(path, json={"freezer_id": 3}, headers=staff.headers),
        400,
        "validation_error",
    )
    assert_error(
        client.patch(
            path,
            json={"description": "x"},
            headers={**staff.headers, "If-Match": '"x"'},
        ),
        412,
        "precondition_failed",
    )
    assert_error(
        client.patch(path, json={"description": "x"}, headers=member.headers),
        403,
        "forbidden",
    )
    assert client.delete(path, headers=staff.headers).status_code == 204
    assert_error(client.get(path, headers=member.headers), 404, "not_found")


@pytest.mark.parametrize(
    "key", ["nope", "00000000-0000-0000-0000-000000000000", "0" * 32]
)
def test_unknown_containers_are_404(client, staff, member, key):
    path = f"/sites/containers/{key}"
    assert_error(client.get(path, headers=member.headers), 404, "not_found")
    assert_error(
        client.patch(path, json={"description": "x"}, headers=staff.headers),
        404,
        "not_found",
    )
    assert_error(client.delete(path, headers=staff.headers), 404, "not_found")
    response = client.post(
        "/sites/freezers/999999/containers",
        json={"description": "x"},
        headers=staff.headers,
    )
    assert_error(response, 404, "not_found")
    assert_error(
        client.get("/sites/freezers/999999/containers", headers=member.headers),
        404,
        "not_found",
    )


def test_a_freezer_holding_containers_is_not_deleted(app, client, staff, freezer, add):
    held = [
        add(f"/sites/freezers/{freezer['id']}/containers", {"description": f"Box {n}"})
        for n in range(2)
    ]
    response = client.delete(f"/sites/freezers/{freezer['id']}", headers=staff.headers)
    body = assert_error(response, 409, "conflict")
    assert {detail["field"] for detail in body["details"]} == {
        f"containers.{c['uuid']}" for c in held
    }
    assert (count(app, FreezerModel), count(app, ContainerModel)) == (1, 2)
    for container in held:
        client.delete(f"/sites/containers/{container['uuid']}", headers=staff.headers)
    assert (
        client.delete(
            f"/sites/freezers/{freezer['id']}", headers=staff.headers
        ).status_code
        == 204
    )


def test_refused_deletes_summarise_long_lists(client, staff, freezer, add):
    for n in range(52):
        add(f"/sites/freezers/{freezer['id']}/containers", {"description": f"Box {n}"})
    details = client.delete(
        f"/sites/freezers/{freezer['id']}", headers=staff.headers
    ).get_json()["details"]
    assert len(details) == 51 and details[-1] == {
        "field": "more",
        "problem": "and 2 more not listed",
    }


# --- The instruments view


@pytest.fixture
def instruments(add):
    north = add("/sites/", {"name": "North"})
    south = add("/sites/", {"name": "South"})
    add(f"/sites/{north['id']}/freezers", {"name": "F-north"})
    add(f"/sites/{south['id']}/freezers", {"name": "F-south"})
    add(f"/sites/{north['id']}/computers", {"name": "C-north"})
    return north, south


@pytest.mark.parametrize(
    "query, names",
    [
        ("", ["C-north", "F-north", "F-south"]),
        ("type=freezer", ["F-north", "F-south"]),
        ("type=computer", ["C-north"]),
        ("sort=-site_name", ["F-south", "F-north", "C-north"]),
        ("sort=type&per_page=2", ["C-north", "F-north"]),
        ("per_page=2&page=2", ["F-south"]),
    ],
)
def test_the_instruments_view(client, member, instruments, query, names):
    response = client.get(f"/sites/instruments/?{query}", headers=member.headers)
    body = response.get_json()
    assert_valid(list_schema(INSTRUMENT_SCHEMA), body)
    assert [item["name"] for item in body["items"]] == names
    assert body["total"] == {"type=freezer": 2, "type=computer": 1}.get(query, 3)
    assert 'rel="first"' in response.headers["Link"]


def test_a_sites_instruments(client, member, instruments):
    north, south = instruments
    body = client.get(
        f"/sites/{north['id']}/instruments", headers=member.headers
    ).get_json()
    assert {
        (item["type"], item["name"], item["site_name"]) for item in body["items"]
    } == {
        ("freezer", "F-north", "North"),
        ("computer", "C-north", "North"),
    }
    assert (
        client.get(
            f"/sites/{south['id']}/instruments?type=computer", headers=member.headers
        ).get_json()["total"]
        == 0
    )
    assert_error(
        client.get("/sites/999999/instruments", headers=member.headers),
        404,
        "not_found",
    )


@pytest.mark.parametrize("query", ["type=pipette", "sort=mac", "per_page=101"])
def test_instruments_reject_bad_params(client, member, query):
    assert_error(
        client.get(f"/sites/instruments/?{query}", headers=member.headers),
        400,
        "bad_request",
    )


def test_instruments_need_a_signed_in_user(client):
    assert_error(client.get("/sites/instruments/"), 401, "unauthorized")


# --- Two clients racing for one MAC, against a live gunicorn


def test_two_clients_racing_for_one_mac(live, committing_app):
    with committing_app.app_context():
        from myapp.users.models import UserModel

        UserModel.create(
            {"email": "tech@example.com", "password": "long enough pw", "name": "T"},
            role="staff",
        )
        site = SiteModel.create({"name": "Race site"})
        sql.session.commit()
        site_id = site.id
    token = requests.post(
        f"{live}/users/tokens",
        json={"email": "tech@example.com", "password": "long enough pw"},
    ).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    for attempt in range(5):
        spellings = [f"00:11:22:33:44:{attempt:02x}", f"00-11-22-33-44-{attempt:02X}"]
        barrier, statuses = threading.Barrier(2), []

        def create(mac):
            barrier.wait()
            response = requests.post(
                f"{live}/sites/{site_id}/computers",
                json={"name": "PC", "mac": mac},
                headers=headers,
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=create, args=(mac,)) for mac in spellings]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [201, 409], statuses
    with committing_app.app_context():
        assert sql.session.scalar(select(func.count()).select_from(ComputerModel)) == 5


# --- The spec, fuzzed


@pytest.fixture
def sites_schema(make_app, add, freezer):
    add(f"/sites/freezers/{freezer['id']}/containers", {"description": "Box"})
    app = make_app(RATELIMIT_DEFAULT="100000 per hour")
    return schemathesis.openapi.from_wsgi("/sites/openapi.json", app)


sites_api = schemathesis.pytest.from_fixture("sites_schema")


@sites_api.parametrize()
def test_sites_api_conforms_to_its_spec(case, staff):
    if case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = staff.headers["Authorization"]
    case.call_and_validate()


# --- Edge cases found in review


def test_a_mac_with_a_trailing_newline_is_400(app, client, staff, site):
    body = {"name": "PC", "mac": "AA:BB:CC:DD:EE:FF\n"}
    response = client.post(
        f"/sites/{site['id']}/computers", json=body, headers=staff.headers
    )
    assert_error(response, 400, "validation_error")
    assert count(app, ComputerModel) == 0


@pytest.mark.parametrize("site_id", ["0", "00", "2147483648"])
def test_a_put_at_an_id_that_cannot_exist_is_404_and_makes_nothing(
    app, client, staff, site_id
):
    """Ids are 1..2**31-1, as the documents say: outside that a PUT does not make
    a site, whatever the database would take."""
    response = client.put(
        f"/sites/{site_id}", json={"name": "Zero"}, headers=staff.headers
    )
    assert_error(response, 404, "not_found")
    assert count(app, SiteModel) == 0


def test_a_put_at_the_largest_id_leaves_post_working(app, client, staff, add):
    top = client.put("/sites/2147483647", json={"name": "Top"}, headers=staff.headers)
    assert top.status_code == 201
    response = client.post("/sites/", json={"name": "After"}, headers=staff.headers)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # SQLite numbers on from the largest id, past what an URL may name...
        assert_error(response, 409, "conflict")
        gone = client.delete("/sites/2147483647", headers=staff.headers)
        assert gone.status_code == 204
        # ...while that id is taken, and no longer: the PUT did not move the
        # sequence that keeps POST's ids from being given twice.
    made = add("/sites/", {"name": "And more"})
    assert made["id"] < 2147483647
    again = client.delete(f"/sites/{made['id']}", headers=staff.headers)
    assert again.status_code == 204
    assert add("/sites/", {"name": "Yet more"})["id"] > made["id"]


@pytest.mark.parametrize("kind", KINDS)
def test_instruments_answer_if_none_match(client, member, site, add, kind):
    item = add(f"/sites/{site['id']}/{kind}", {"name": "Unit"})
    etag = client.get(f"/sites/{kind}/{item['id']}", headers=member.headers).headers[
        "ETag"
    ]
    cached = client.get(
        f"/sites/{kind}/{item['id']}", headers={**member.headers, "If-None-Match": etag}
    )
    assert cached.status_code == 304


def test_containers_answer_if_none_match(client, member, freezer, add):
    container = add(
        f"/sites/freezers/{freezer['id']}/containers", {"description": "Box"}
    )
    path = f"/sites/containers/{container['uuid']}"
    etag = client.get(path, headers=member.headers).headers["ETag"]
    assert (
        client.get(path, headers={**member.headers, "If-None-Match": etag}).status_code
        == 304
    )
