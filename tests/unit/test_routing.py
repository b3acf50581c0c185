"""RouteTemplate: matching, constraints, precedence and template errors."""

from __future__ import annotations

import pytest

from devtools.host.routing import RouteTemplate, RouteTemplateError


def test_literal_route_matches_case_insensitively() -> None:
    template = RouteTemplate("Reports/Daily")
    assert template.match("/reports/daily") == {}
    assert template.match("/REPORTS/DAILY") == {}
    assert template.match("/reports/weekly") is None


def test_path_without_leading_slash_is_accepted() -> None:
    assert RouteTemplate("reports/daily").match("reports/daily") == {}


def test_leading_and_trailing_slashes_in_template_are_ignored() -> None:
    template = RouteTemplate("/items/{id}/")
    assert template.template == "items/{id}"
    assert template.match("/items/7") == {"id": "7"}


def test_parameter_value_is_captured() -> None:
    template = RouteTemplate("items/{id}")
    assert template.match("/items/abc-123") == {"id": "abc-123"}


def test_parameter_does_not_span_segments() -> None:
    template = RouteTemplate("items/{id}")
    assert template.match("/items/a/b") is None
    assert template.match("/items") is None


def test_parameter_keeps_value_case_while_literal_is_case_insensitive() -> None:
    assert RouteTemplate("items/{id}").match("/ITEMS/MiXeD") == {"id": "MiXeD"}


def test_trailing_slash_on_path_matches() -> None:
    assert RouteTemplate("items/{id}").match("/items/5/") == {"id": "5"}
    assert RouteTemplate("items").match("/items/") == {}


def test_empty_template_matches_root() -> None:
    template = RouteTemplate("")
    assert template.match("/") == {}
    assert template.match("/anything") is None


def test_optional_parameter_absent_is_omitted_from_values() -> None:
    template = RouteTemplate("items/{id?}")
    values = template.match("/items")
    assert values == {}
    assert "id" not in values


def test_optional_parameter_absent_with_trailing_slash() -> None:
    assert RouteTemplate("items/{id?}").match("/items/") == {}


def test_optional_parameter_present() -> None:
    assert RouteTemplate("items/{id?}").match("/items/42") == {"id": "42"}


def test_optional_parameter_with_constraint() -> None:
    template = RouteTemplate("items/{id:int?}")
    assert template.match("/items") == {}
    assert template.match("/items/5") == {"id": "5"}
    assert template.match("/items/five") is None


def test_multiple_parameters_in_one_segment() -> None:
    template = RouteTemplate("files/{name}.{ext}")
    assert template.match("/files/report.csv") == {"name": "report", "ext": "csv"}


def test_catch_all_captures_the_rest_of_the_path() -> None:
    template = RouteTemplate("files/{*path}")
    assert template.match("/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert template.match("/files/one") == {"path": "one"}


def test_catch_all_absent_is_omitted() -> None:
    assert RouteTemplate("files/{*path}").match("/files") == {}


def test_catch_all_does_not_match_other_prefix() -> None:
    assert RouteTemplate("files/{*path}").match("/other/a") is None


@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        ("int", ["0", "-5", "2147483647", "-2147483648"], ["2147483648", "1.5", "abc"]),
        ("long", ["9223372036854775807", "-9223372036854775808"], ["9223372036854775808", "x"]),
        ("bool", ["true", "FALSE", "True"], ["yes", "1"]),
        ("alpha", ["abc", "ABCdef"], ["abc1", "é", "a-b"]),
        (
            "guid",
            ["6f9619ff-8b86-d011-b42d-00cf4fc964ff", "6F9619FF8B86D011B42D00CF4FC964FF"],
            ["nope", "1234"],
        ),
        ("datetime", ["2024-01-02", "2024-01-02T03:04:05"], ["yesterday", "2024-13-01"]),
        ("double", ["1.5", "-2", "1e3"], ["one", "1.2.3"]),
        ("minlength(3)", ["abc", "abcdef"], ["ab"]),
        ("maxlength(3)", ["a", "abc"], ["abcd"]),
        ("length(3)", ["abc"], ["ab", "abcd"]),
        ("length(2,4)", ["ab", "abcd"], ["a", "abcde"]),
        ("range(1,10)", ["1", "10", "5"], ["0", "11", "x"]),
        ("min(5)", ["5", "500"], ["4", "x"]),
        ("max(5)", ["5", "-3"], ["6"]),
        ("regex(^[a-z]+$)", ["abc"], ["abc1", "ABC1"]),
    ],
)
def test_constraints(constraint: str, good: list[str], bad: list[str]) -> None:
    template = RouteTemplate(f"items/{{value:{constraint}}}")
    for value in good:
        assert template.match(f"/items/{value}") == {"value": value}, (constraint, value)
    for value in bad:
        assert template.match(f"/items/{value}") is None, (constraint, value)


def test_constraint_name_is_case_insensitive() -> None:
    template = RouteTemplate("items/{id:INT}")
    assert template.match("/items/3") == {"id": "3"}
    assert template.match("/items/x") is None


def test_chained_constraints_all_apply() -> None:
    template = RouteTemplate("items/{id:int:range(1,100)}")
    assert template.match("/items/50") == {"id": "50"}
    assert template.match("/items/500") is None
    assert template.match("/items/abc") is None


def test_regex_constraint_with_colon_and_comma_inside_parentheses() -> None:
    template = RouteTemplate("at/{t:regex(^[0-9]+:[0-9]+,x$)}")
    assert template.match("/at/12:30,x") == {"t": "12:30,x"}
    assert template.match("/at/1230") is None


@pytest.mark.parametrize(
    ("shorter", "longer"),
    [
        ("items/new", "items/{id}"),
        ("items/new", "items/{id:int}"),
        ("items/{id:int}", "items/{id}"),
        ("items/{id}", "items/{id?}"),
        ("items/{id?}", "items/{*rest}"),
        ("items", "{*path}"),
    ],
)
def test_precedence_orders_more_specific_first(shorter: str, longer: str) -> None:
    assert RouteTemplate(shorter).precedence < RouteTemplate(longer).precedence


def test_sorting_by_precedence_puts_literal_route_first() -> None:
    templates = [RouteTemplate(t) for t in ("{*path}", "items/{id}", "items/new", "items/{id:int}")]
    ordered = [t.template for t in sorted(templates, key=lambda t: t.precedence)]
    assert ordered.index("items/new") < ordered.index("items/{id}")
    assert ordered.index("items/{id:int}") < ordered.index("items/{id}")
    assert ordered[-1] == "{*path}"
    # The literal route and the parameter route both match the same path.
    assert RouteTemplate("items/new").match("/items/new") == {}
    assert RouteTemplate("items/{id}").match("/items/new") == {"id": "new"}


@pytest.mark.parametrize(
    "template",
    [
        "items/{1id}",
        "items/{id-x}",
        "items/{id:nosuchconstraint}",
        "items/{id:int!}",
        "{*path}/tail",
        "a/{*path}/b",
    ],
)
def test_bad_templates_raise_route_template_error(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate(template)


def test_route_template_error_is_a_value_error() -> None:
    assert issubclass(RouteTemplateError, ValueError)


def test_duplicate_parameter_name_raises_route_template_error() -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate("{id}/{id}")


def test_constraint_with_missing_argument_raises_route_template_error() -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate("items/{id:range(1)}")


def test_constraint_without_required_argument_is_rejected_up_front() -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate("items/{id:minlength}")


def test_non_numeric_constraint_argument_raises_route_template_error() -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate("items/{id:minlength(x)}")


def test_unclosed_brace_raises_route_template_error() -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate("items/{id")
