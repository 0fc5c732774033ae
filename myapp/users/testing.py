"""Helpers the users tests share: stored users, bearer headers, token claims."""

import base64
import json

from sqlalchemy import func, select

from myapp.db import sql
from myapp.users.models import UserModel

NEW_USER = {"email": "Ada@Example.com", "password": "analytical engine", "name": "Ada"}


def user_count(app) -> int:
    with app.app_context():
        return sql.session.scalar(select(func.count()).select_from(UserModel))


def stored_user(app, user_id: int) -> UserModel | None:
    with app.app_context():
        user = sql.session.get(UserModel, user_id)
        if user is not None:
            sql.session.expunge(user)
        return user


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _segments(token: str) -> list[str]:
    return token.split(".")


def _claims(token: str) -> dict:
    payload = _segments(token)[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
