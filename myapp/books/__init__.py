"""The books feature: the catalog, loans, popular books."""

from myapp.books.endpoints import blueprint

__all__ = ["blueprint"]
