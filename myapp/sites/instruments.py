"""A site's instruments: freezers and computers, created under their site and
moved between sites by site_id, and one list of both (a UNION ALL in SQL). A
computer's MAC is unique in any spelling; a freezer holding containers is not
deleted."""

from __future__ import annotations

from functools import cache

from sqlalchemy import ForeignKey, Index, String, func, literal, select, union_all
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db import sql
from myapp.ordering import ordered_rows
from myapp.pagination import ListQuery, Page
from myapp.schema import ID, TIMESTAMP, object_schema, patch_form, text_schema, validate
from myapp.sites.models import MAX_LISTED_DEPENDENTS, SiteModel, refuse_delete
from myapp.sql_model import SqlModel, Timestamped, iso

MAC = {
    "type": "string",
    "pattern": (
        "^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
        "|^[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}$"
        "|^[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}\\.[0-9A-Fa-f]{4}$"
    ),
    "description": "aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF or aabb.ccdd.eeff; "
    "stored and returned as lowercase aa:bb:cc:dd:ee:ff",
}


def normalize_mac(mac: str | None) -> str | None:
    """The one spelling of a MAC address that a validated one has."""
    if mac is None:
        return None
    digits = "".join(char for char in mac.lower() if char in "0123456789abcdef")
    return ":".join(digits[index : index + 2] for index in range(0, 12, 2))


class InstrumentModel(SqlModel, Timestamped):
    """What freezers and computers share: a name, a site, and moving between
    sites by PUT/PATCH of site_id (404 if that site does not exist)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))

    sort_columns = {"id": "id", "name": "name"}

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "site_id": self.site_id,
            **self.extra_json(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    def extra_json(self) -> dict:
        return {}

    @classmethod
    def list(cls, site_id: int, query: ListQuery):
        SiteModel.get_or_404(site_id)
        return cls.page(select(cls).where(cls.site_id == site_id), query)

    @classmethod
    def create(cls, site_id: int, data: dict):
        validate(cls.create_schema, data)
        # Locked, so the site cannot be deleted before this instrument is in.
        SiteModel.get_or_404(site_id, for_update=True)
        item = cls(site_id=site_id, **cls.prepared(data))
        sql.session.add(item)
        cls.flush_unique()
        return item

    def update(self, data: dict, *, replace: bool) -> None:
        validate(self.write_schema if replace else self.patch_schema, data)
        if "site_id" in data:
            SiteModel.get_or_404(data["site_id"], for_update=True)
        if replace:
            data = {**self.replace_defaults(), **data}
        for key, value in self.prepared(data).items():
            setattr(self, key, value)
        self.flush_unique()

    @classmethod
    def prepared(cls, data: dict) -> dict:
        return data

    @classmethod
    def replace_defaults(cls) -> dict:
        return {}

    @classmethod
    def flush_unique(cls) -> None:
        sql.session.flush()


def instrument_schemas(title: str, extra: dict) -> tuple[dict, dict, dict]:
    """create (nested under a site), write (PUT: may move it), patch."""
    create = {
        "title": f"{title}Create",
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": text_schema(200), **extra},
    }
    write = {
        **create,
        "title": f"{title}Write",
        "required": ["name", "site_id"],
        "properties": {**create["properties"], "site_id": ID},
    }
    return create, write, patch_form(write, title=f"{title}Patch")


class FreezerModel(InstrumentModel, sql.Model):
    __tablename__ = "freezers"
    label = "Freezer"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))

    __table_args__ = (Index("ix_freezers_site_id", site_id),)

    create_schema, write_schema, patch_schema = instrument_schemas("Freezer", {})
    read_schema = object_schema(
        "Freezer",
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "site_id": {"type": "integer"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )

    def delete(self) -> None:
        """Refused (409, naming them) while the freezer holds containers."""
        # Containers are kept in freezers (containers.py imports this module), so
        # their model is imported here, when a freezer is deleted.
        from myapp.sites.containers import ContainerModel

        where = ContainerModel.freezer_id == self.id
        total = sql.session.scalar(select(func.count()).where(where))
        if total:
            held = sql.session.scalars(
                select(ContainerModel)
                .where(where)
                .order_by(ContainerModel.uuid)
                .limit(MAX_LISTED_DEPENDENTS)
            )
            dependents = [
                {"field": f"containers.{item.uuid}", "problem": "is still in it"}
                for item in held
            ]
            refuse_delete("The freezer still holds containers", dependents, total)
        super().delete()


class ComputerModel(InstrumentModel, sql.Model):
    __tablename__ = "computers"
    label = "Computer"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    mac: Mapped[str | None] = mapped_column(String(17), unique=True)

    __table_args__ = (Index("ix_computers_site_id", site_id),)

    create_schema, write_schema, patch_schema = instrument_schemas(
        "Computer", {"mac": {**MAC, "type": ["string", "null"]}}
    )
    read_schema = object_schema(
        "Computer",
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "site_id": {"type": "integer"},
            "mac": {
                "type": ["string", "null"],
                "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$",
            },
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )

    def extra_json(self) -> dict:
        return {"mac": self.mac}

    @classmethod
    def prepared(cls, data: dict) -> dict:
        if "mac" in data:
            return {**data, "mac": normalize_mac(data["mac"])}
        return data

    @classmethod
    def replace_defaults(cls) -> dict:
        return {"mac": None}

    @classmethod
    def flush_unique(cls) -> None:
        """The unique index decides, so two clients racing for one MAC (in any of
        its spellings) cannot both win."""
        cls.flush_or_conflict(
            "Another computer has this MAC address", "mac", "already in use"
        )


# --- The instruments view: one list of freezers and computers, in SQL.


@cache
def instruments_query():
    """UNION ALL of freezers and computers with their site's name, as a subquery
    (type, id, name, site_id, site_name); built once."""
    parts = [
        select(
            literal(kind).label("type"),
            model.id.label("id"),
            model.name.label("name"),
            model.site_id.label("site_id"),
            SiteModel.name.label("site_name"),
        ).join(SiteModel, SiteModel.id == model.site_id)
        for kind, model in (("freezer", FreezerModel), ("computer", ComputerModel))
    ]
    return union_all(*parts).subquery("instruments")


INSTRUMENT_SCHEMA = object_schema(
    "Instrument",
    {
        "type": {"type": "string", "enum": ["freezer", "computer"]},
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "site_id": {"type": "integer"},
        "site_name": {"type": "string"},
    },
)
INSTRUMENT_SORTS = ("name", "type", "site_name", "id")


def list_instruments(query: ListQuery, site_id: int | None = None) -> Page:
    """A page of instruments, for all sites or one (404 if it does not exist)."""
    if site_id is not None:
        SiteModel.get_or_404(site_id)
    view = instruments_query()
    statement = select(view)
    if site_id is not None:
        statement = statement.where(view.c.site_id == site_id)
    if "type" in query.filters:
        statement = statement.where(view.c.type == query.filters["type"])
    total = sql.session.scalar(select(func.count()).select_from(statement.subquery()))
    order = [view.c[query.sort], view.c.type, view.c.id]  # every one NOT NULL
    rows = ordered_rows(
        statement,
        order,
        query,
        lambda part: sql.session.execute(part).mappings(),
        False,
    )
    items = [dict(row) for row in rows]
    full = len(items) == query.per_page
    last = tuple(items[-1][column.key] for column in order) if full else None
    return Page(items, total, last)


def mappings(statement) -> list:
    return list(sql.session.execute(statement).mappings())
