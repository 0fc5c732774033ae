"""/sites: lab sites, their freezers and computers, containers in freezers, and one
list of all instruments. Reading needs a signed-in user, writing staff."""

from myapp.api import Resource, make_api, no_content
from myapp.conditional import check_if_match, single_response
from myapp.pagination import ListParams, list_schema, page_response
from myapp.schema import json_body, text
from myapp.sites.models import (
    INSTRUMENT_SCHEMA,
    INSTRUMENT_SORTS,
    ComputerModel,
    ContainerModel,
    FreezerModel,
    SiteModel,
    list_instruments,
)

feature = make_api(
    "sites",
    "myapp sites",
    "Lab sites, their freezers and computers, and the containers in freezers",
)
blueprint, ns = feature.blueprint, feature.ns

site_model = feature.model("Site", SiteModel.read_schema)
site_write_model = feature.model("SiteWrite", SiteModel.write_schema)
site_patch_model = feature.model("SitePatch", SiteModel.patch_schema)
site_page_model = feature.model("SitePage", list_schema(SiteModel.read_schema))
instrument_page_model = feature.model("InstrumentPage", list_schema(INSTRUMENT_SCHEMA))
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
        "country": text(200, description="The country, any case"),
        "q": text(100, description="Substring of the name, any case"),
    },
)
INSTRUMENT_LIST = ListParams(
    list(INSTRUMENT_SORTS),
    "name",
    filters={"type": {"type": "string", "enum": ["freezer", "computer"]}},
)
CONTAINER_LIST = ListParams(["created_at", "uuid"], "created_at")


@feature.route("/")
class Sites(Resource):
    @feature.requires()
    @ns.doc(params=SITE_LIST.swagger_params())
    @ns.response(200, "A page of sites", site_page_model)
    @feature.errors(400)
    def get(self):
        """List sites."""
        query = SITE_LIST.parse()
        sites, total = SiteModel.list(query)
        return page_response([site.as_json() for site in sites], total, query)

    @feature.requires("staff")
    @feature.expects(site_write_model)
    @ns.response(201, "Created", site_model)
    def post(self):
        """Add a site (staff)."""
        return single_response(SiteModel.create(json_body()).as_json(), 201)


@feature.route("/<int:site_id>")
class Site(Resource):
    @feature.requires()
    @ns.response(200, "The site", site_model)
    @ns.response(304, "Not modified (If-None-Match)")
    @feature.errors(404)
    def get(self, site_id):
        """One site."""
        return single_response(SiteModel.get_or_404(site_id).as_json())

    @feature.requires("staff")
    @feature.expects(site_write_model)
    @ns.response(200, "Replaced", site_model)
    @ns.response(201, "Created with this id", site_model)
    @feature.errors(404, 412)
    def put(self, site_id):
        """Create the site with this id, or replace it (staff)."""
        existing = SiteModel.find(site_id, for_update=True)
        check_if_match(existing.as_json() if existing else None)
        site, created = SiteModel.upsert(site_id, json_body())
        return single_response(site.as_json(), 201 if created else 200)

    @feature.requires("staff")
    @feature.expects(site_patch_model)
    @ns.response(200, "Updated", site_model)
    @feature.errors(404, 412)
    def patch(self, site_id):
        """Change some of a site's fields (staff)."""
        site = SiteModel.get_or_404(site_id, for_update=True)
        check_if_match(site.as_json())
        site.update(json_body(), replace=False)
        return single_response(site.as_json())

    @feature.requires("staff")
    @ns.response(204, "Deleted")
    @feature.errors(404, 409, 412)
    def delete(self, site_id):
        """Remove a site (staff); 409 naming its instruments while it has any."""
        site = SiteModel.get_or_404(site_id, for_update=True)
        check_if_match(site.as_json())
        site.delete()
        return no_content()


def instrument_resources(model, plural: str):
    """The nested list/create and the by-id read/replace/update/delete resources of
    an instrument kind (freezers, computers): the same contract for both."""
    item_model = feature.model(model.label, model.read_schema)
    create_model = feature.model(f"{model.label}Create", model.create_schema)
    write_model = feature.model(f"{model.label}Write", model.write_schema)
    patch_model = feature.model(f"{model.label}Patch", model.patch_schema)
    page_model = feature.model(f"{model.label}Page", list_schema(model.read_schema))
    listing = ListParams(["name", "id"], "name")

    class Nested(Resource):
        @feature.requires()
        @ns.doc(params=listing.swagger_params())
        @ns.response(200, f"A page of the site's {plural}", page_model)
        @feature.errors(400, 404)
        def get(self, site_id):
            query = listing.parse()
            items, total = model.list(site_id, query)
            return page_response([each.as_json() for each in items], total, query)

        @feature.requires("staff")
        @feature.expects(create_model)
        @ns.response(201, "Created", item_model)
        @feature.errors(404, 409)
        def post(self, site_id):
            return single_response(model.create(site_id, json_body()).as_json(), 201)

    class Single(Resource):
        @feature.requires()
        @ns.response(200, f"The {model.label.lower()}", item_model)
        @ns.response(304, "Not modified (If-None-Match)")
        @feature.errors(404)
        def get(self, item_id):
            return single_response(model.get_or_404(item_id).as_json())

        @feature.requires("staff")
        @feature.expects(write_model)
        @ns.response(200, "Replaced", item_model)
        @feature.errors(404, 409, 412)
        def put(self, item_id):
            return update_instrument(model, item_id, replace=True)

        @feature.requires("staff")
        @feature.expects(patch_model)
        @ns.response(200, "Updated", item_model)
        @feature.errors(404, 409, 412)
        def patch(self, item_id):
            return update_instrument(model, item_id, replace=False)

        @feature.requires("staff")
        @ns.response(204, "Deleted")
        @feature.errors(404, 409, 412)
        def delete(self, item_id):
            found = model.get_or_404(item_id, for_update=True)
            check_if_match(found.as_json())
            found.delete()
            return no_content()

    # Names and summaries per kind, set before registering: Flask-RESTX derives
    # endpoint names and Swagger summaries from them.
    label = model.label.lower()
    for method, summary in (
        (Nested.get, f"List a site's {plural}."),
        (Nested.post, f"Add a {label} to a site (staff)."),
        (Single.get, f"One {label}."),
        (Single.put, f"Replace a {label}; site_id may move it (staff)."),
        (Single.patch, f"Change some of a {label}'s fields (staff)."),
        (Single.delete, f"Remove a {label} (staff)."),
    ):
        method.__doc__ = summary
    Nested.__name__ = Nested.__qualname__ = f"Site{plural.title()}"
    Single.__name__ = Single.__qualname__ = model.label
    feature.route(f"/<int:site_id>/{plural}")(Nested)
    feature.route(f"/{plural}/<int:item_id>")(Single)


def update_instrument(model, item_id: int, *, replace: bool):
    found = model.get_or_404(item_id, for_update=True)
    check_if_match(found.as_json())
    found.update(json_body(), replace=replace)
    return single_response(found.as_json())


instrument_resources(FreezerModel, "freezers")
instrument_resources(ComputerModel, "computers")


@feature.route("/instruments/")
class Instruments(Resource):
    @feature.requires()
    @ns.doc(params=INSTRUMENT_LIST.swagger_params())
    @ns.response(200, "A page of every site's instruments", instrument_page_model)
    @feature.errors(400)
    def get(self):
        """Every instrument (freezers and computers) of every site."""
        query = INSTRUMENT_LIST.parse()
        return page_response(*list_instruments(query), query)


@feature.route("/<int:site_id>/instruments")
class SiteInstruments(Resource):
    @feature.requires()
    @ns.doc(params=INSTRUMENT_LIST.swagger_params())
    @ns.response(200, "A page of the site's instruments", instrument_page_model)
    @feature.errors(400, 404)
    def get(self, site_id):
        """A site's instruments (freezers and computers)."""
        query = INSTRUMENT_LIST.parse()
        return page_response(*list_instruments(query, site_id), query)


@feature.route("/freezers/<int:freezer_id>/containers")
class FreezerContainers(Resource):
    @feature.requires()
    @ns.doc(params=CONTAINER_LIST.swagger_params())
    @ns.response(200, "A page of the freezer's containers", container_page_model)
    @feature.errors(400, 404)
    def get(self, freezer_id):
        """The containers in a freezer."""
        query = CONTAINER_LIST.parse()
        items, total = ContainerModel.list(freezer_id, query)
        return page_response([each.as_json() for each in items], total, query)

    @feature.requires("staff")
    @feature.expects(container_create_model)
    @ns.response(201, "Stored", container_model)
    @feature.errors(404, 409)
    def post(self, freezer_id):
        """Put a container in a freezer (staff); its uuid is made when not given."""
        container = ContainerModel.create(freezer_id, json_body())
        return single_response(container.as_json(), 201)


@feature.route("/containers/<string:container_uuid>")
class Container(Resource):
    @feature.requires()
    @ns.response(200, "The container", container_model)
    @ns.response(304, "Not modified (If-None-Match)")
    @feature.errors(404)
    def get(self, container_uuid):
        """One container, by uuid."""
        return single_response(ContainerModel.get_or_404(container_uuid).as_json())

    @feature.requires("staff")
    @feature.expects(container_patch_model)
    @ns.response(200, "Updated", container_model)
    @feature.errors(404, 412)
    def patch(self, container_uuid):
        """Change a container's description (staff)."""
        container = ContainerModel.get_or_404(container_uuid, for_update=True)
        check_if_match(container.as_json())
        container.update(json_body())
        return single_response(container.as_json())

    @feature.requires("staff")
    @ns.response(204, "Removed")
    @feature.errors(404, 412)
    def delete(self, container_uuid):
        """Take a container out (staff)."""
        container = ContainerModel.get_or_404(container_uuid, for_update=True)
        check_if_match(container.as_json())
        container.delete()
        return no_content()
