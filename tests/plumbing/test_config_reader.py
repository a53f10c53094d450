"""The typed config reader: every supported annotation accepts its own values (in the field's
form) and rejects every other kind, with one message naming the section, key and value."""

from dataclasses import dataclass, field

import pytest

from markovfork.plumbing.config_reader import check_fields, check_value, from_mapping


@dataclass(frozen=True)
class Inner:
    x: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        if self.x < 0:
            raise ValueError(f"x must be >= 0, got {self.x}")


@dataclass(frozen=True)
class Outer:
    n: int = 1
    name: str = "a"
    flag: bool = False
    maybe: int | None = None
    ks: tuple[int, ...] = (1,)
    pair: tuple[float, float] = (0.0, 1.0)
    rhos: list[float] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        check_fields(self)


GOOD = [
    (int, 3, 3), (int, -2, -2), (float, 2, 2.0), (float, 0.5, 0.5), (str, "s", "s"), (bool, True, True),
    (int | None, None, None), (int | None, 4, 4), (tuple[int, ...], [1, 2], (1, 2)), (tuple[int, ...], [], ()),
    (tuple[float, float], [1, 0.5], (1.0, 0.5)), (list[float], (1, 2.5), [1.0, 2.5]), (list[str], ["a"], ["a"]),
]


@pytest.mark.parametrize(("hint", "value", "expected"), GOOD)
def test_accepted_values_in_the_fields_form(hint, value, expected):
    out = check_value(hint, value, "key")
    assert out == expected and type(out) is type(expected)
    if isinstance(out, (list, tuple)):
        assert [type(v) for v in out] == [type(v) for v in expected]


BAD = [
    (int, 2.5, "key must be an integer, got 2.5"),
    (int, True, "key must be an integer, got True"),
    (int, "2", "key must be an integer, got '2'"),
    (float, "0.5", "key must be a number, got '0.5'"),
    (float, True, "key must be a number, got True"),
    (float, float("inf"), "key must be a finite number"),
    (str, 5, "key must be a string, got 5"),
    (bool, 1, "key must be true or false, got 1"),
    (int | None, 1.5, "key must be an integer, got 1.5"),
    (tuple[int, ...], 5, "key must be a list of integers, got 5"),
    (tuple[int, ...], "12", "key must be a list of integers, got '12'"),
    (tuple[int, ...], [1.5, 2], "key[0] must be an integer, got 1.5"),
    (tuple[float, float], [0.9], "key must be a list of 2 numbers, got [0.9]"),
    (list[float], "0.5", "key must be a list of numbers, got '0.5'"),
    (list[float], [0.5, "x"], "key[1] must be a number, got 'x'"),
    (list[str], [1], "key[0] must be a string, got 1"),
    (Inner, {"x": 1}, "key must be a table (Inner), got {'x': 1}"),
]


@pytest.mark.parametrize(("hint", "value", "message"), BAD)
def test_rejected_values_one_line_naming_key_and_value(hint, value, message):
    with pytest.raises(ValueError) as info:
        check_value(hint, value, "key")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_from_mapping_sections_nested_tables_unknown_keys():
    out = from_mapping(Outer, {"n": 2, "ks": [3, 4], "inner": {"x": 2}})
    assert out == Outer(n=2, ks=(3, 4), inner=Inner(2.0))
    cases = {
        "[outer] ks[1] must be an integer, got 'a'": ({"ks": [1, "a"]}, "outer"),
        "[outer.inner] x must be a number, got '1'": ({"inner": {"x": "1"}}, "outer"),
        "[outer.inner] x must be >= 0, got -1.0": ({"inner": {"x": -1}}, "outer"),  # the constructor's check, prefixed
        "[outer] inner must be a table, got 3": ({"inner": 3}, "outer"),
        "unknown key 'nn' in [outer] (known: n, name,": ({"nn": 1}, "outer"),
        "unknown key 'nn' at the top level": ({"nn": 1}, ""),
        "n must be an integer, got 1.5": ({"n": 1.5}, ""),
        "[outer] must be a table, got [1]": ([1], "outer"),
    }
    for message, (mapping, section) in cases.items():
        with pytest.raises(ValueError) as info:
            from_mapping(Outer, mapping, section)
        assert str(info.value).startswith(message), (message, str(info.value))


def test_constructors_check_and_store_the_checked_form():
    assert Outer(pair=[1, 2]).pair == (1.0, 2.0)
    for bad in (dict(n="1"), dict(flag="yes"), dict(maybe=2.0), dict(inner={"x": 1}), dict(rhos=0.5)):
        with pytest.raises(ValueError, match="must be"):
            Outer(**bad)
