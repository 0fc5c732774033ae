"""Helpers the sites tests share: a site's body and row counts."""

from sqlalchemy import func, select

from myapp.db import sql

SITE = {
    "name": "Cambridge Lab",
    "contact": "Dr. Rosalind",
    "address": "1 Tennis Court Road",
    "state_or_region": "Cambridgeshire",
    "country": "United Kingdom",
    "postcode_or_zip": "CB2 1QW",
}


def count(app, model) -> int:
    with app.app_context():
        return sql.session.scalar(select(func.count()).select_from(model))
