"""The containers kept in freezers: named by a uuid (generated when not given,
unique, kept in lowercase); only their description changes."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from myapp.db import sql
from myapp.errors import not_found
from myapp.pagination import ListQuery
from myapp.schema import TIMESTAMP, object_schema, text_schema, validate
from myapp.sites.instruments import FreezerModel
from myapp.sql_model import SqlModel, Timestamped, iso


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
