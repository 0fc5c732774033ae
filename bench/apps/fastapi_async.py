"""The peer a user picks for speed: the same `GET /books/<id>` in FastAPI, async
end to end on an asyncpg pool, answered through a pydantic response model, under
uvicorn (uvloop and httptools, from uvicorn[standard])."""

import os
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

BOOK_COLUMNS = (
    "id, title, author, isbn, published_year, copies_total, copies_available,"
    " times_borrowed, created_at, updated_at"
)


class BookOut(BaseModel):
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


@asynccontextmanager
async def lifespan(app: FastAPI):
    """One pool per worker process, made after the fork."""
    app.state.pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=2, max_size=10
    )
    yield
    await app.state.pool.close()


app = FastAPI(title="books (async comparison)", lifespan=lifespan)


@app.get("/books/{book_id}", response_model=BookOut)
async def read_book(book_id: int, request: Request):
    row = await request.app.state.pool.fetchrow(
        f"SELECT {BOOK_COLUMNS} FROM books WHERE id = $1", book_id
    )
    if row is None:
        raise HTTPException(status_code=404, detail="Book not found")
    return dict(row)
