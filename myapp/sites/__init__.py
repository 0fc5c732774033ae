"""The sites feature: lab sites, their instruments, and containers in freezers."""

from myapp.sites.endpoints import blueprint

# Imported for their routes, which join the feature after the sites' own and in
# this order: the API documents list routes as they were registered.
from myapp.sites import instrument_endpoints, container_endpoints  # noqa: F401

__all__ = ["blueprint"]
