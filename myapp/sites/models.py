"""Lab sites and their instruments (freezers and computers); freezers hold
containers. Deletes are refused while dependents remain, naming them."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from functools import cache

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db import sql
from myapp.errors import conflict, not_found
from myapp.pagination import ListQuery
from myapp.schema import (
    ID,
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
ADDRESS_FIELDS = ("contact", "address", "state_or_region", "country", "postcode_or_zip")


def normalize_mac(mac: str | None) -> str | None:
    """The one spelling of a MAC address that a validated one has."""
    if mac is None:
        return None
    digits = "".join(char for char in mac.lower() if char in "0123456789abcdef")
    return ":".join(digits[index : index + 2] for index in range(0, 12, 2))


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
    def list(cls, query: ListQuery) -> tuple[list[SiteModel], int]:
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


class ContainerModel(SqlModel, Timestamped, sql.Model):
    __tablename__ = "containers"
    label = "Container"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    freezer_id: Mapped[int] = mapped_column(
        ForeignKey("freezers.id", ondelete="RESTRICT")
    )

    __table_args__ = (Index("ix_containers_freezer_id", freezer_id),)
    sort_columns = {"uuid": "uuid", "created_at": "created_at"}

    create_schema = {
        "title": "ContainerCreate",
        "type": "object",
        "additionalProperties": False,
        "required": ["description"],
        "properties": {
            "uuid": {
                "type": "string",
                "format": "uuid",
                "pattern": "^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$",
                "description": "Generated when not given; stored in lowercase",
            },
            "description": text_schema(2000),
        },
    }
    write_schema = create_schema
    patch_schema = {
        "title": "ContainerPatch",
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {"description": text_schema(2000)},
    }
    read_schema = object_schema(
        "Container",
        {
            "uuid": {"type": "string", "format": "uuid"},
            "description": {"type": "string"},
            "freezer_id": {"type": "integer"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
    )

    def as_json(self) -> dict:
        return {
            "uuid": self.uuid,
            "description": self.description,
            "freezer_id": self.freezer_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    @classmethod
    def get_or_404(cls, key: str, *, for_update: bool = False) -> ContainerModel:
        try:
            canonical = str(uuid.UUID(key))
        except ValueError:
            raise not_found(cls.label) from None
        if canonical != key.lower():  # only the hyphenated form names a container
            raise not_found(cls.label)
        return super().get_or_404(canonical, for_update=for_update)

    @classmethod
    def list(cls, freezer_id: int, query: ListQuery):
        FreezerModel.get_or_404(freezer_id)
        return cls.page(select(cls).where(cls.freezer_id == freezer_id), query)

    @classmethod
    def create(cls, freezer_id: int, data: dict) -> ContainerModel:
        validate(cls.create_schema, data)
        FreezerModel.get_or_404(freezer_id, for_update=True)
        key = data.get("uuid", "").lower() or str(uuid.uuid4())
        container = cls(
            uuid=key, description=data["description"], freezer_id=freezer_id
        )
        sql.session.add(container)
        container.flush_or_conflict("A container with this uuid exists", "uuid")
        return container

    def update(self, data: dict) -> None:
        validate(self.patch_schema, data)
        self.description = data["description"]
        sql.session.flush()


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


def list_instruments(query: ListQuery, site_id: int | None = None):
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
    order = [view.c[query.sort], view.c.type, view.c.id]
    if query.descending:
        order = [column.desc() for column in order]
    rows = sql.session.execute(
        statement.order_by(*order).limit(query.per_page).offset(query.offset)
    )
    return [dict(row._mapping) for row in rows], total
