"""Containers in a freezer: UUIDs, validation, updates, deletes, and freezers
that hold containers."""

import uuid

import pytest

from myapp.pagination import list_schema
from myapp.sites.containers import ContainerModel
from myapp.sites.instruments import FreezerModel
from myapp.testing import assert_error, assert_valid
from myapp.sites.testing import count


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
