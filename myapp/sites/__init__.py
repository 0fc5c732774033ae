"""The sites feature: lab sites, freezers, computers, containers, instruments."""

from myapp.sites.endpoints import blueprint

__all__ = ["blueprint"]
