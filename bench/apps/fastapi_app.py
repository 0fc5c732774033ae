"""What a user might pick instead: the same `GET /books/<id>` in FastAPI with
SQLAlchemy's ORM and a pydantic response model, the way FastAPI's own SQL tutorial
writes it (a sync session per request through a dependency), under uvicorn."""

import os
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import DateTime, Integer, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

engine = create_engine(
    os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1),
    pool_pre_ping=True,
)


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str] = mapped_column(String(13))
    published_year: Mapped[int | None] = mapped_column(Integer)
    copies_total: Mapped[int] = mapped_column(Integer)
    copies_available: Mapped[int] = mapped_column(Integer)
    times_borrowed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    author: str
    isbn: str
    published_year: int | None
    copies_total: int
    copies_available: int
    times_borrowed: int
    created_at: datetime
    updated_at: datetime


def get_session():
    with Session(engine) as session:
        yield session


app = FastAPI(title="books (comparison)")


@app.get("/books/{book_id}", response_model=BookOut)
def read_book(book_id: int, session: Annotated[Session, Depends(get_session)]):
    book = session.get(Book, book_id)
    if book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    return book
