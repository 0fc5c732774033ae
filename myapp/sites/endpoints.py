"""/sites: lab sites, their freezers and computers, containers in freezers, and one
list of all instruments. Reading needs a signed-in user, writing staff."""

from myapp.api import Resource, make_api, no_content
from myapp.conditional import (
    check_if_match,
    created,
    delete_if_match,
    single_response,
    update_if_match,
)
from myapp.pagination import ListParams, list_schema, page_response
from myapp.schema import json_body, text_schema
from myapp.sites.containers import ContainerModel
from myapp.sites.instruments import (
    INSTRUMENT_SCHEMA,
    INSTRUMENT_SORTS,
    ComputerModel,
    FreezerModel,
    list_instruments,
)
from myapp.sites.models import SiteModel

feature = make_api(
    "sites",
    "myapp sites",
    "Lab sites, their freezers and computers, and the containers in freezers",
    tags={
        "sites": "Lab sites: any signed-in user reads them, staff change them",
        "freezers": "A site's freezers",
        "computers": "A site's computers",
        "containers": "The containers kept in freezers",
        "instruments": "Freezers and computers in one list",
    },
)
blueprint, ns = feature.blueprint, feature.ns

site_model = feature.model("Site", SiteModel.read_schema)
site_write_model = feature.model("SiteWrite", SiteModel.write_schema)
site_patch_model = feature.model("SitePatch", SiteModel.patch_schema)
site_page_model = feature.model("SitePage", list_schema(SiteModel.read_schema))
instrument_model = feature.model("Instrument", INSTRUMENT_SCHEMA)
instrument_page_model = feature.model("InstrumentPage", list_schema(INSTRUMENT_SCHEMA))
freezer_model = feature.model("Freezer", FreezerModel.read_schema)
freezer_create_model = feature.model("FreezerCreate", FreezerModel.create_schema)
freezer_write_model = feature.model("FreezerWrite", FreezerModel.write_schema)
freezer_patch_model = feature.model("FreezerPatch", FreezerModel.patch_schema)
freezer_page_model = feature.model("FreezerPage", list_schema(FreezerModel.read_schema))
computer_model = feature.model("Computer", ComputerModel.read_schema)
computer_create_model = feature.model("ComputerCreate", ComputerModel.create_schema)
computer_write_model = feature.model("ComputerWrite", ComputerModel.write_schema)
computer_patch_model = feature.model("ComputerPatch", ComputerModel.patch_schema)
computer_page_model = feature.model(
    "ComputerPage", list_schema(ComputerModel.read_schema)
)
container_model = feature.model("Container", ContainerModel.read_schema)
container_create_model = feature.model("ContainerCreate", ContainerModel.create_schema)
container_patch_model = feature.model("ContainerPatch", ContainerModel.patch_schema)
container_page_model = feature.model(
    "ContainerPage", list_schema(ContainerModel.read_schema)
)

SITE_LIST = ListParams(
    ["name", "country", "id"],
    "name",
    filters={
        "country": text_schema(200, description="The country, any case"),
        "q": text_schema(100, description="Substring of the name, any case"),
    },
)
INSTRUMENT_LIST = ListParams(
    list(INSTRUMENT_SORTS),
    "name",
    filters={"type": {"type": "string", "enum": ["freezer", "computer"]}},
)
INSTRUMENT_KIND_LIST = ListParams(["name", "id"], "name")
CONTAINER_LIST = ListParams(["created_at", "uuid"], "created_at")


@feature.route("/")
class Sites(Resource):
    @feature.requires()
    @feature.lists(site_page_model, SITE_LIST, "A page of sites")
    def get(self):
        """List sites."""
        query = SITE_LIST.parse()
        sites, total = SiteModel.list(query)
        return page_response([site.as_json() for site in sites], total, query)

    @feature.requires("staff")
    @feature.expects(site_write_model)
    @feature.creates(site_model, "Created")
    @feature.errors(409)
    def post(self):
        """Add a site (staff). 409 when no id is left to give it (see PUT)."""
        site = SiteModel.create(json_body()).as_json()
        return created(site, feature.api.url_for(Site, site_id=site["id"]))


@feature.route("/<int:site_id>")
class Site(Resource):
    @feature.requires()
    @feature.reads(site_model, "The site")
    def get(self, site_id):
        """One site."""
        return single_response(SiteModel.get_or_404(site_id).as_json())

    @feature.requires("staff")
    @feature.expects(site_write_model)
    @feature.updates(site_model, "Replaced")
    @feature.creates(site_model, "Created with this id")
    def put(self, site_id):
        """Create the site with this id, or replace it (staff)."""
        existing = SiteModel.find(site_id, for_update=True)
        check_if_match(existing.as_json() if existing else None)
        site, new = SiteModel.upsert(site_id, json_body())
        if new:
            return created(site.as_json(), feature.api.url_for(Site, site_id=site_id))
        return single_response(site.as_json())

    @feature.requires("staff")
    @feature.expects(site_patch_model)
    @feature.updates(site_model, "Updated")
    def patch(self, site_id):
        """Change some of a site's fields (staff)."""
        return update_if_match(SiteModel, site_id, replace=False)

    @feature.requires("staff")
    @feature.deletes("Deleted")
    @feature.errors(409)
    def delete(self, site_id):
        """Remove a site (staff); 409 naming its instruments while it has any."""
        delete_if_match(SiteModel, site_id)
        return no_content()


# Freezers and computers: created under their site, then read, replaced, updated
# and deleted by id, where site_id moves them. A computer's MAC is unique (409); a
# freezer holding containers cannot be deleted (409).


@feature.route("/<int:site_id>/freezers", tag="freezers")
class SiteFreezers(Resource):
    @feature.requires()
    @feature.lists(freezer_page_model, INSTRUMENT_KIND_LIST, "A page of freezers")
    @feature.errors(404)
    def get(self, site_id):
        """List a site's freezers."""
        return instrument_page(FreezerModel, site_id)

    @feature.requires("staff")
    @feature.expects(freezer_create_model)
    @feature.creates(freezer_model, "Created")
    @feature.errors(404)
    def post(self, site_id):
        """Add a freezer to a site (staff)."""
        freezer = FreezerModel.create(site_id, json_body()).as_json()
        return created(freezer, feature.api.url_for(Freezer, freezer_id=freezer["id"]))


@feature.route("/freezers/<int:freezer_id>", tag="freezers")
class Freezer(Resource):
    @feature.requires()
    @feature.reads(freezer_model, "The freezer")
    def get(self, freezer_id):
        """One freezer."""
        return single_response(FreezerModel.get_or_404(freezer_id).as_json())

    @feature.requires("staff")
    @feature.expects(freezer_write_model)
    @feature.updates(freezer_model, "Replaced")
    def put(self, freezer_id):
        """Replace a freezer; site_id may move it (staff)."""
        return update_if_match(FreezerModel, freezer_id, replace=True)

    @feature.requires("staff")
    @feature.expects(freezer_patch_model)
    @feature.updates(freezer_model, "Updated")
    def patch(self, freezer_id):
        """Change some of a freezer's fields (staff)."""
        return update_if_match(FreezerModel, freezer_id, replace=False)

    @feature.requires("staff")
    @feature.deletes("Deleted")
    @feature.errors(409)
    def delete(self, freezer_id):
        """Remove a freezer (staff); 409 naming its containers while it holds any."""
        delete_if_match(FreezerModel, freezer_id)
        return no_content()


@feature.route("/<int:site_id>/computers", tag="computers")
class SiteComputers(Resource):
    @feature.requires()
    @feature.lists(computer_page_model, INSTRUMENT_KIND_LIST, "A page of computers")
    @feature.errors(404)
    def get(self, site_id):
        """List a site's computers."""
        return instrument_page(ComputerModel, site_id)

    @feature.requires("staff")
    @feature.expects(computer_create_model)
    @feature.creates(computer_model, "Created")
    @feature.errors(404, 409)
    def post(self, site_id):
        """Add a computer to a site (staff). 409 when its MAC is taken."""
        computer = ComputerModel.create(site_id, json_body()).as_json()
        location = feature.api.url_for(Computer, computer_id=computer["id"])
        return created(computer, location)


@feature.route("/computers/<int:computer_id>", tag="computers")
class Computer(Resource):
    @feature.requires()
    @feature.reads(computer_model, "The computer")
    def get(self, computer_id):
        """One computer."""
        return single_response(ComputerModel.get_or_404(computer_id).as_json())

    @feature.requires("staff")
    @feature.expects(computer_write_model)
    @feature.updates(computer_model, "Replaced")
    @feature.errors(409)
    def put(self, computer_id):
        """Replace a computer; site_id may move it (staff). 409: the MAC is taken."""
        return update_if_match(ComputerModel, computer_id, replace=True)

    @feature.requires("staff")
    @feature.expects(computer_patch_model)
    @feature.updates(computer_model, "Updated")
    @feature.errors(409)
    def patch(self, computer_id):
        """Change some of a computer's fields (staff). 409: the MAC is taken."""
        return update_if_match(ComputerModel, computer_id, replace=False)

    @feature.requires("staff")
    @feature.deletes("Deleted")
    def delete(self, computer_id):
        """Remove a computer (staff)."""
        delete_if_match(ComputerModel, computer_id)
        return no_content()


def instrument_page(model, site_id: int):
    query = INSTRUMENT_KIND_LIST.parse()
    items, total = model.list(site_id, query)
    return page_response([item.as_json() for item in items], total, query)


@feature.route("/instruments/", tag="instruments")
class Instruments(Resource):
    @feature.requires()
    @feature.lists(
        instrument_page_model, INSTRUMENT_LIST, "A page of every site's instruments"
    )
    def get(self):
        """Every instrument (freezers and computers) of every site."""
        query = INSTRUMENT_LIST.parse()
        return page_response(*list_instruments(query), query)


@feature.route("/<int:site_id>/instruments", tag="instruments")
class SiteInstruments(Resource):
    @feature.requires()
    @feature.lists(
        instrument_page_model, INSTRUMENT_LIST, "A page of the site's instruments"
    )
    @feature.errors(404)
    def get(self, site_id):
        """A site's instruments (freezers and computers)."""
        query = INSTRUMENT_LIST.parse()
        return page_response(*list_instruments(query, site_id), query)


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
        items, total = ContainerModel.list(freezer_id, query)
        return page_response([each.as_json() for each in items], total, query)

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
