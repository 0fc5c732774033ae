"""/sites: freezers and computers, and one list of every instrument. Freezers and
computers are created under their site, then read, replaced, updated and deleted
by id, where site_id moves them; a computer's MAC is unique (409), and a freezer
holding containers cannot be deleted (409). The routes are on the sites feature
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
from myapp.sites.endpoints import feature
from myapp.sites.instruments import (
    INSTRUMENT_SCHEMA,
    INSTRUMENT_SORTS,
    ComputerModel,
    FreezerModel,
    list_instruments,
)

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

INSTRUMENT_LIST = ListParams(
    list(INSTRUMENT_SORTS),
    "name",
    filters={"type": {"type": "string", "enum": ["freezer", "computer"]}},
)
INSTRUMENT_KIND_LIST = ListParams(["name", "id"], "name")


def instrument_page(model, site_id: int):
    query = INSTRUMENT_KIND_LIST.parse()
    return page_response(model.list(site_id, query).json(model.as_json), query)


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


@feature.route("/instruments/", tag="instruments")
class Instruments(Resource):
    @feature.requires()
    @feature.lists(
        instrument_page_model, INSTRUMENT_LIST, "A page of every site's instruments"
    )
    def get(self):
        """Every instrument (freezers and computers) of every site."""
        query = INSTRUMENT_LIST.parse()
        return page_response(list_instruments(query), query)


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
        return page_response(list_instruments(query, site_id), query)
