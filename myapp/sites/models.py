"""Lab sites, and what the sites feature's models share: a delete is refused
(409) while dependents remain, naming them. A site's instruments are in
instruments.py, the containers kept in freezers in containers.py."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Index, String, Text, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db import sql
from myapp.errors import conflict
from myapp.pagination import ListQuery, Page
from myapp.schema import (
    MAX_ID,
    TIMESTAMP,
    object_schema,
    patch_form,
    text_schema,
    validate,
)
from myapp.sql_model import (
    SqlModel,
    Timestamped,
    contains_any_case,
    equals_any_case,
    iso,
)

# How many ids a POST tries past ids that PUTs took before giving up (409).
FREE_ID_ATTEMPTS = 100
# How many dependents a refused delete names before summarising the rest.
MAX_LISTED_DEPENDENTS = 50
OPTIONAL_TEXT = {**text_schema(500), "type": ["string", "null"]}
ADDRESS_FIELDS = ("contact", "address", "state_or_region", "country", "postcode_or_zip")


def named(label: str, item) -> dict:
    return {"field": f"{label}.{item.id}", "problem": f"{item.name!r} is still here"}


def refuse_delete(message: str, dependents: list[dict], total: int) -> None:
    details = dependents[:MAX_LISTED_DEPENDENTS]
    if total > len(details):
        more = total - len(details)
        details.append({"field": "more", "problem": f"and {more} more not listed"})
    raise conflict(message, details)


@contextmanager
def sequence_kept(chosen_id: int | None):
    """An id chosen by PUT leaves SQLite's AUTOINCREMENT sequence where it was, as
    an explicit id leaves a PostgreSQL sequence: one PUT of the largest id would
    otherwise move it to the end for good, and no POST could make a site again.
    Ids a POST was given are still never given twice."""
    session = sql.session
    if chosen_id is None or session.get_bind().dialect.name != "sqlite":
        yield
        return
    position = "SELECT seq FROM sqlite_sequence WHERE name = 'sites'"
    before = session.execute(text(position)).scalar()
    yield
    if before is None:
        session.execute(text("DELETE FROM sqlite_sequence WHERE name = 'sites'"))
    else:
        session.execute(
            text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'sites'"),
            {"seq": before},
        )


class SiteModel(SqlModel, Timestamped, sql.Model):
    __tablename__ = "sites"
    label = "Site"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    state_or_region: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str | None] = mapped_column(Text)
    postcode_or_zip: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_sites_name", name),
        Index("ix_sites_country", country),
    )
    sort_columns = {"id": "id", "name": "name", "country": "country"}

    write_schema = {
        "title": "SiteWrite",
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": text_schema(200),
            **{field: OPTIONAL_TEXT for field in ADDRESS_FIELDS},
        },
    }
    patch_schema = patch_form(write_schema, title="SitePatch")
    read_schema = object_schema(
        "Site",
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            **{field: {"type": ["string", "null"]} for field in ADDRESS_FIELDS},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            **{field: getattr(self, field) for field in ADDRESS_FIELDS},
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    @classmethod
    def list(cls, query: ListQuery) -> Page:
        statement = select(cls)
        if "country" in query.filters:
            statement = statement.where(
                equals_any_case(cls.country, query.filters["country"])
            )
        if "q" in query.filters:
            statement = statement.where(contains_any_case(query.filters["q"], cls.name))
        return cls.page(statement, query)

    @classmethod
    def create(cls, data: dict, site_id: int | None = None) -> SiteModel:
        """POST (site_id None: the next free id) or the creating half of PUT.

        Ids chosen by PUT are left out of the id sequence's way rather than moving
        it (which one PUT of a huge id would exhaust): a POST handed an id that a
        PUT already took simply takes the next one."""
        validate(cls.write_schema, data)
        fields = {**{field: None for field in ADDRESS_FIELDS}, **data}
        for _ in range(FREE_ID_ATTEMPTS):
            site = cls(id=site_id, **fields)
            try:
                with sql.session.begin_nested(), sequence_kept(site_id):
                    sql.session.add(site)
                    sql.session.flush()
                    if site.id > MAX_ID:  # SQLite counts on from the largest id
                        raise conflict("No site id is left below the id limit")
                return site
            except IntegrityError:
                if site_id is not None:
                    raise
        raise conflict("No free site id was found; try again")

    @classmethod
    def upsert(cls, site_id: int, data: dict) -> tuple[SiteModel, bool]:
        """PUT: replace the site with this id, or create it with this id. Returns
        the site and whether it was created."""
        validate(cls.write_schema, data)
        site = cls.find(site_id, for_update=True)
        if site is not None:
            site.update(data, replace=True)
            return site, False
        try:
            site = cls.create(data, site_id)
        except IntegrityError:  # a concurrent request created it first: replace it
            site = cls.get_or_404(site_id, for_update=True)
            site.update(data, replace=True)
            return site, False
        return site, True

    def update(self, data: dict, *, replace: bool) -> None:
        validate(self.write_schema if replace else self.patch_schema, data)
        if replace:
            data = {**{field: None for field in ADDRESS_FIELDS}, **data}
        for key, value in data.items():
            setattr(self, key, value)
        sql.session.flush()

    def delete(self) -> None:
        """Refused (409, naming them) while instruments remain at the site."""
        # Instruments are made on sites (instruments.py imports this module), so
        # their models are imported here, when a site is deleted.
        from myapp.sites.instruments import ComputerModel, FreezerModel

        dependents, total = [], 0
        for model, label in ((FreezerModel, "freezers"), (ComputerModel, "computers")):
            where = model.site_id == self.id
            total += sql.session.scalar(select(func.count()).where(where))
            found = sql.session.scalars(
                select(model)
                .where(where)
                .order_by(model.id)
                .limit(MAX_LISTED_DEPENDENTS)
            )
            dependents += [named(label, item) for item in found]
        if total:
            refuse_delete("The site still has instruments", dependents, total)
        super().delete()
