"""Properties of pagination and validation, tried by Hypothesis."""

import math
import re

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from myapp.pagination import ListParams, link_header
from myapp.schema import problems, validate

# --- Properties of pagination and validation


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(0, 10**6),
    per_page=st.integers(1, 100),
    page=st.integers(1, 20000),
)
def test_link_header_properties(total, per_page, page):
    with Flask(__name__).test_request_context(f"/things/?page={page}&sort=name"):
        header = link_header(page, per_page, total)
    links = {
        part.split('rel="')[1].rstrip('"'): part.split(">")[0].lstrip("<")
        for part in header.split(", ")
    }
    last = max(1, math.ceil(total / per_page))
    assert links["first"].endswith("page=1") and links["last"].endswith(f"page={last}")
    assert ("prev" in links) == (page > 1)
    assert ("next" in links) == (page < last)
    assert all("sort=name" in url for url in links.values())


LIST = ListParams(["name"], "name", filters={"open": {"type": "boolean"}})


@settings(max_examples=200, deadline=None)
@given(
    per_page=st.one_of(
        st.integers(-5, 200),
        st.text(max_size=5),
        st.sampled_from(["²", "٣", "+5", " 5"]),
    )
)
def test_per_page_is_accepted_only_in_range(per_page):
    # Encoded, as a client sends it: a raw "1\n" in the URL would be cut to "1".
    with Flask(__name__).test_request_context(query_string={"per_page": per_page}):
        digits = re.fullmatch(r"[0-9]+", str(per_page))
        if digits and 1 <= int(str(per_page)) <= 100:
            assert LIST.parse().per_page == int(str(per_page))
        else:
            with pytest.raises(Exception) as raised:
                LIST.parse()
            assert raised.value.status == 400


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": {"type": "string", "maxLength": 5}},
}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers() | st.text()))
def test_every_unknown_field_is_reported(body):
    found = {problem["field"] for problem in problems(SCHEMA, body)}
    for key in body:
        if key != "name":
            assert key in found
    assert ("name" in found) == (
        "name" not in body or not isinstance(body["name"], str) or len(body["name"]) > 5
    )


@given(st.text(max_size=5))
def test_valid_bodies_pass_through_unchanged(name):
    assert validate(SCHEMA, {"name": name}) == {"name": name}
