"""GitHub's published REST operations (tests/fixtures/operations.json) and how a request path
matches one: templates, greedy parameters, query enums, request-body schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema

from tests.support import FIXTURES

OPERATIONS_FILE = FIXTURES / "operations.json"


# Template params whose values legitimately contain "/" (file paths, refs like heads/x/y,
# branch names like loopwright/fix-1, "base...head").  GitHub accepts them unencoded.
GREEDY_PARAMS = frozenset({"path", "ref", "branch", "basehead"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    pattern: re.Pattern[str]
    literal_segments: int
    greedy_params: int
    body_schema: Mapping[str, Any] | None
    body_required: bool
    success: frozenset[int]
    # Declared query parameters: name -> enum of allowed values (None = any value).
    query_params: Mapping[str, tuple[str, ...] | None]


def _openapi30_to_jsonschema(node: Any) -> Any:
    # The description is OpenAPI 3.0, where `nullable: true` is a sibling keyword that plain
    # JSON Schema ignores; without this, a legitimate `null` (e.g. milestone) would be rejected.
    if isinstance(node, list):
        return [_openapi30_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi30_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and ("oneOf" in out or "anyOf" in out):
            key = "oneOf" if "oneOf" in out else "anyOf"
            out[key] = [*out[key], {"type": "null"}]
    return out


def _enum_of(schema: Mapping[str, Any]) -> tuple[str, ...] | None:
    enum = schema.get("enum")
    return tuple(str(v) for v in enum) if isinstance(enum, list) else None


def _compile_template(path: str, int_params: set[str]) -> tuple[re.Pattern[str], int, int]:
    parts: list[str] = []
    literals = greedy = 0
    for segment in path.strip("/").split("/"):
        m = re.fullmatch(r"\{(\w+)\}", segment)
        if m is None:
            literals += 1
            parts.append(re.escape(segment))
        elif m.group(1) in GREEDY_PARAMS:
            greedy += 1
            parts.append(f"(?P<{m.group(1)}>.+)")
        elif m.group(1) in int_params:
            # GitHub answers 404 for /issues/abc, so a non-numeric id is "no such operation".
            parts.append(f"(?P<{m.group(1)}>[0-9]+)")
        else:
            parts.append(f"(?P<{m.group(1)}>[^/]+)")
    return re.compile("/" + "/".join(parts)), literals, greedy


class OperationIndex:
    """Method + path -> the one published operation GitHub would route it to."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.source: str = raw["source"]
        self.operations: list[Operation] = []
        self._by_key: dict[tuple[str, str], list[Operation]] = {}
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        for entry in raw["operations"]:
            int_params = {
                p["name"]
                for p in entry.get("parameters", [])
                if p.get("in") == "path" and p.get("schema", {}).get("type") == "integer"
            }
            pattern, literals, greedy = _compile_template(entry["path"], int_params)
            request_body = entry.get("requestBody") or {}
            schema = request_body.get("content", {}).get("application/json", {}).get("schema")
            op = Operation(
                method=entry["method"].upper(),
                path=entry["path"],
                operation_id=entry["operationId"],
                pattern=pattern,
                literal_segments=literals,
                greedy_params=greedy,
                body_schema=_openapi30_to_jsonschema(schema) if schema else None,
                body_required=bool(request_body.get("required")),
                success=frozenset(int(s) for s in entry.get("success", []) if s.isdigit()),
                query_params={
                    p["name"]: _enum_of(p.get("schema", {}))
                    for p in entry.get("parameters", [])
                    if p.get("in") == "query"
                },
            )
            self.operations.append(op)
            self._by_key.setdefault((op.method, self._first_segment(op.path)), []).append(op)

    @staticmethod
    def _first_segment(path: str) -> str:
        return path.strip("/").split("/", 1)[0]

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]] | None:
        candidates = self._by_key.get((method.upper(), self._first_segment(raw_path)), [])
        best: tuple[tuple[int, int], Operation, dict[str, str]] | None = None
        for op in candidates:
            m = op.pattern.fullmatch(raw_path)
            if m is None:
                continue
            # Like GitHub's router: literal segments beat params (/issues/comments is not
            # issue "comments"), and a slash-spanning param is the last resort.
            rank = (op.literal_segments, -op.greedy_params)
            if best is None or rank > best[0]:
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                best = (rank, op, params)
        return None if best is None else (best[1], best[2])

    def validator(self, op: Operation) -> jsonschema.protocols.Validator | None:
        if op.body_schema is None:
            return None
        if op.operation_id not in self._validators:
            self._validators[op.operation_id] = jsonschema.Draft7Validator(op.body_schema)
        return self._validators[op.operation_id]


@cache
def load_operations(path: Path = OPERATIONS_FILE) -> OperationIndex:
    return OperationIndex(json.loads(path.read_text(encoding="utf-8")))
