"""Sites, /sites/ and /sites/<id>, on PostgreSQL and SQLite: creating, reading,
listing, PUT at an id, PATCH, and deletes refused while instruments remain."""

import pytest

from myapp.pagination import list_schema
from myapp.sites.instruments import ComputerModel, FreezerModel
from myapp.sites.models import SiteModel
from myapp.testing import assert_error, assert_valid
from myapp.sites.testing import SITE, count


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
