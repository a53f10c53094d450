"""JSON at any nesting depth: the explicit-stack reader and writer equal the standard library's
on random documents, reject the same bad texts, and handle 100,000 levels."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markovfork.plumbing import deep_json

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False), st.text(max_size=6))
documents = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=4), inner, max_size=4)),
                         max_leaves=30)


@given(documents)
def test_reader_and_writer_equal_the_standard_library(doc):
    text = json.dumps(doc)
    assert deep_json.dumps(doc) == text
    assert json.dumps(deep_json._loads_iterative(text)) == text
    spaced = json.dumps(doc, indent=3)
    assert json.dumps(deep_json._loads_iterative(spaced)) == text


@pytest.mark.parametrize("text", ["", "[1,]", '{"a" 1}', "[1 2]", '{"a":1,}', "[1]]", "{1:2}", "tru", "[", '["a]', "01", "-"])
def test_bad_text_is_a_decode_error_as_in_the_standard_library(text):
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        deep_json._loads_iterative(text)


def test_100000_levels():
    text = "[" * 100_000 + "{}" + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(text)
    doc = deep_json.loads(text)
    assert deep_json.dumps(doc) == text
    depth = 0
    while isinstance(doc, list):
        doc, depth = doc[0], depth + 1
    assert depth == 100_000 and doc == {}
