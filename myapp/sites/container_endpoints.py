"""/sites: the containers kept in freezers, put in under their freezer, then read,
updated and taken out by uuid. The routes are on the sites feature
(endpoints.py)."""

from myapp.api import Resource, no_content
from myapp.conditional import (
    created,
    delete_if_match,
    single_response,
    update_if_match,
)
from myapp.pagination import ListParams, list_schema, page_response
from myapp.schema import json_body
from myapp.sites.containers import ContainerModel
from myapp.sites.endpoints import feature

container_model = feature.model("Container", ContainerModel.read_schema)
container_create_model = feature.model("ContainerCreate", ContainerModel.create_schema)
container_patch_model = feature.model("ContainerPatch", ContainerModel.patch_schema)
container_page_model = feature.model(
    "ContainerPage", list_schema(ContainerModel.read_schema)
)

CONTAINER_LIST = ListParams(["created_at", "uuid"], "created_at")


@feature.route("/freezers/<int:freezer_id>/containers", tag="containers")
class FreezerContainers(Resource):
    @feature.requires()
    @feature.lists(
        container_page_model, CONTAINER_LIST, "A page of the freezer's containers"
    )
    @feature.errors(404)
    def get(self, freezer_id):
        """The containers in a freezer."""
        query = CONTAINER_LIST.parse()
        containers = ContainerModel.list(freezer_id, query)
        return page_response(containers.json(ContainerModel.as_json), query)

    @feature.requires("staff")
    @feature.expects(container_create_model)
    @feature.creates(container_model, "Stored")
    @feature.errors(404, 409)
    def post(self, freezer_id):
        """Put a container in a freezer (staff); its uuid is made when not given."""
        container = ContainerModel.create(freezer_id, json_body()).as_json()
        location = feature.api.url_for(Container, container_uuid=container["uuid"])
        return created(container, location)


@feature.route("/containers/<string:container_uuid>", tag="containers")
class Container(Resource):
    @feature.requires()
    @feature.reads(container_model, "The container")
    def get(self, container_uuid):
        """One container, by uuid."""
        return single_response(ContainerModel.get_or_404(container_uuid).as_json())

    @feature.requires("staff")
    @feature.expects(container_patch_model)
    @feature.updates(container_model, "Updated")
    def patch(self, container_uuid):
        """Change a container's description (staff)."""
        return update_if_match(ContainerModel, container_uuid)

    @feature.requires("staff")
    @feature.deletes("Removed")
    def delete(self, container_uuid):
        """Take a container out (staff)."""
        delete_if_match(ContainerModel, container_uuid)
        return no_content()
