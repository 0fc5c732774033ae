"""The users feature: accounts, tokens, sessions."""

from myapp.users.endpoints import blueprint

__all__ = ["blueprint"]
