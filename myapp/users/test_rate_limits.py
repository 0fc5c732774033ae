"""Rate limits per identity, shared across endpoints and instances."""

from myapp.testing import assert_error


def test_the_default_budget_is_shared_across_endpoints_and_instances(make_app, member):
    first = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    second = make_app(RATELIMIT_DEFAULT="2 per minute").test_client()
    assert first.get("/users/me", headers=member.headers).status_code == 200
    assert second.get("/users/me/sessions", headers=member.headers).status_code == 200
    assert_error(first.get("/users/me", headers=member.headers), 429, "rate_limited")
