"""Freezers and computers (the same contract) under a site: creation, moves,
MAC addresses in any spelling, and two clients racing for one MAC."""

import threading

import pytest
import requests
from sqlalchemy import func, select

from myapp.db import sql
from myapp.pagination import list_schema
from myapp.sites.instruments import ComputerModel, FreezerModel
from myapp.sites.models import SiteModel
from myapp.testing import assert_error, assert_valid
from myapp.sites.testing import count

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


def test_a_mac_with_a_trailing_newline_is_400(app, client, staff, site):
    body = {"name": "PC", "mac": "AA:BB:CC:DD:EE:FF\n"}
    response = client.post(
        f"/sites/{site['id']}/computers", json=body, headers=staff.headers
    )
    assert_error(response, 400, "validation_error")
    assert count(app, ComputerModel) == 0


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
