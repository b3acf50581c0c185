"""Route templates as the Functions host reads them: {name}, {name?}, {name:constraint}, {*rest}."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

_PARAM = re.compile(r"\{(?P<body>[^{}]+)\}")
_CONSTRAINT = re.compile(r"^(?P<name>[a-zA-Z]+)(?:\((?P<args>.*)\))?$")


class RouteTemplateError(ValueError):
    pass


def _is_int(lo: int, hi: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return lo <= int(value) <= hi
        except ValueError:
            return False

    return check


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _constraint_check(spec: str) -> Callable[[str], bool]:
    match = _CONSTRAINT.match(spec)
    if not match:
        raise RouteTemplateError(f"unsupported route constraint '{spec}'")
    name, args = match.group("name").lower(), match.group("args")
    numbers: list[int] = []
    if args and name != "regex":
        try:
            numbers = [int(a) for a in args.split(",")]
        except ValueError as exc:
            raise RouteTemplateError(f"route constraint '{spec}' needs whole-number arguments") from exc
    expected_arguments = {
        "minlength": (1,),
        "maxlength": (1,),
        "length": (1, 2),
        "min": (1,),
        "max": (1,),
        "range": (2,),
    }
    if name in expected_arguments and len(numbers) not in expected_arguments[name]:
        raise RouteTemplateError(f"route constraint '{spec}' has the wrong number of arguments")
    simple: dict[str, Callable[[str], bool]] = {
        "int": _is_int(-(2**31), 2**31 - 1),
        "long": _is_int(-(2**63), 2**63 - 1),
        "bool": lambda v: v.lower() in ("true", "false"),
        "alpha": lambda v: v.isascii() and v.isalpha(),
        "guid": _is_guid,
        "datetime": _is_datetime,
        "decimal": _is_float,
        "double": _is_float,
        "float": _is_float,
    }
    if name in simple:
        return simple[name]
    if name == "minlength":
        return lambda v: len(v) >= numbers[0]
    if name == "maxlength":
        return lambda v: len(v) <= numbers[0]
    if name == "length":
        return (
            (lambda v: len(v) == numbers[0])
            if len(numbers) == 1
            else (lambda v: numbers[0] <= len(v) <= numbers[1])
        )
    if name == "min":
        return lambda v: _is_int(numbers[0], 2**63)(v)
    if name == "max":
        return lambda v: _is_int(-(2**63), numbers[0])(v)
    if name == "range":
        return _is_int(numbers[0], numbers[1])
    if name == "regex":
        pattern = re.compile(args or "")
        return lambda v: pattern.search(v) is not None
    raise RouteTemplateError(f"unsupported route constraint '{spec}'")


@dataclass
class _Parameter:
    name: str
    optional: bool
    catch_all: bool
    checks: list[Callable[[str], bool]] = field(default_factory=list)


def _parse_parameter(body: str) -> _Parameter:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    body = body.rstrip("?")
    name, *constraints = _split_constraints(body)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RouteTemplateError(f"bad route parameter name '{name}'")
    return _Parameter(name, optional, catch_all, [_constraint_check(c) for c in constraints])


def _split_constraints(body: str) -> list[str]:
    """Split 'id:int:min(1)' on colons that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == ":" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


class RouteTemplate:
    """One compiled route. `precedence` orders candidates: literals beat parameters."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.parameters: list[_Parameter] = []
        pattern_parts: list[str] = []
        precedence: list[int] = []
        if self.template.count("{") != self.template.count("}"):
            raise RouteTemplateError(f"unbalanced braces in route template '{template}'")
        segments = self.template.split("/") if self.template else []
        for index, segment in enumerate(segments):
            params = list(_PARAM.finditer(segment))
            if not params:
                pattern_parts.append("/" + re.escape(segment))
                precedence.append(0)
                continue
            seg_regex, last = "", 0
            for match in params:
                param = _parse_parameter(match.group("body"))
                if any(p.name.lower() == param.name.lower() for p in self.parameters):
                    raise RouteTemplateError(f"route parameter '{param.name}' appears twice in '{template}'")
                if param.catch_all and index != len(segments) - 1:
                    raise RouteTemplateError(f"catch-all must be the last segment in '{template}'")
                self.parameters.append(param)
                seg_regex += re.escape(segment[last : match.start()])
                seg_regex += f"(?P<{param.name}>.*)" if param.catch_all else f"(?P<{param.name}>[^/]+)"
                last = match.end()
            seg_regex += re.escape(segment[last:])
            only = params[0] if len(params) == 1 and params[0].span() == (0, len(segment)) else None
            parsed = self.parameters[-1]
            if only is not None and (parsed.optional or parsed.catch_all):
                pattern_parts.append(f"(?:/{seg_regex})?")
                precedence.append(4 if parsed.catch_all else 3)
            else:
                pattern_parts.append("/" + seg_regex)
                precedence.append(1 if parsed.checks else 2)
        self._regex = re.compile("^" + "".join(pattern_parts) + "/?$", re.IGNORECASE)
        self.precedence = tuple(precedence)

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (which starts with '/'), or None if it does not match."""
        match = self._regex.match(path if path.startswith("/") else "/" + path)
        if not match:
            return None
        values: dict[str, str] = {}
        for param in self.parameters:
            value = match.group(param.name)
            if value is None or value == "":
                if param.optional or param.catch_all:
                    continue
                return None
            if not all(check(value) for check in param.checks):
                return None
            values[param.name] = value
        return values
