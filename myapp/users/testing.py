"""Helpers the users tests share: stored users."""

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
