"""Every call checked against the published operations: unknown query parameters, enum
values, request bodies against their schema. A mismatch is a violation in `fake.violations`."""

from __future__ import annotations

import jsonschema

from tests.support.fakegithub.operations import Operation
from tests.support.fakegithub.state import GitHubError, RecordedRequest


class Validation:
    """FakeGitHub's checks of a request against its operation (a mixin of FakeGitHub)."""

    def _violation(self, rec: RecordedRequest, message: str) -> None:
        self.violations.append(f"{rec.method} {rec.path}: {message}")

    def assert_no_violations(self) -> None:
        if self.violations:
            raise AssertionError("GitHub API violations:\n" + "\n".join(self.violations))

    def _check_query(self, op: Operation, rec: RecordedRequest) -> None:
        # GitHub silently ignores unknown or invalid query parameters, which is exactly how a
        # typo (`perpage`, `state=opened`) goes unnoticed; record it instead of failing the call.
        for name, value in rec.query.items():
            if name not in op.query_params:
                self._violation(rec, f"{op.operation_id}: unknown query parameter {name!r}")
                continue
            allowed = op.query_params[name]
            if allowed is not None and value not in allowed:
                self._violation(rec, f"{op.operation_id}: {name}={value!r} not in {allowed}")

    def _validate_body(self, op: Operation, rec: RecordedRequest, *, has_body: bool) -> None:
        validator = self.operations.validator(op)
        if validator is None:
            return
        if not has_body:
            if op.body_required:
                self._violation(rec, f"{op.operation_id}: required request body missing")
                raise GitHubError(422, "Invalid request.\n\nNo request body was supplied.")
            return
        error = jsonschema.exceptions.best_match(validator.iter_errors(rec.json))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            message = error.message
            if error.validator == "maxLength" and isinstance(error.instance, str):
                # GitHub's wording, and not the whole over-long value echoed back.
                message = (
                    f"Only {error.validator_value} characters are allowed; "
                    f"{len(error.instance)} were supplied"
                )
                self._violation(rec, f"{op.operation_id}: body invalid at {where}: {message}")
                raise GitHubError(422, f"Invalid request.\n\n{message}.")
            self._violation(rec, f"{op.operation_id}: body invalid at {where}: {message}")
            raise GitHubError(422, f"Invalid request.\n\nFor '{where}', {message}.")
