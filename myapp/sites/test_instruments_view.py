"""The instruments view: every instrument, or a site's, filtered and sorted."""

import pytest

from myapp.pagination import list_schema
from myapp.sites.instruments import INSTRUMENT_SCHEMA
from myapp.testing import assert_error, assert_valid


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
