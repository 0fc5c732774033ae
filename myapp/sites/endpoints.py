"""/sites: the feature (its blueprint, Api and tags), and the lab sites. Reading
needs a signed-in user, writing staff. A site's instruments (instrument_endpoints.py)
and the containers in freezers (container_endpoints.py) add their routes to this
feature."""

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

SITE_LIST = ListParams(
    ["name", "country", "id"],
    "name",
    filters={
        "country": text_schema(200, description="The country, any case"),
        "q": text_schema(100, description="Substring of the name, any case"),
    },
)


@feature.route("/")
class Sites(Resource):
    @feature.requires()
    @feature.lists(site_page_model, SITE_LIST, "A page of sites")
    def get(self):
        """List sites."""
        query = SITE_LIST.parse()
        return page_response(SiteModel.list(query).json(SiteModel.as_json), query)

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
