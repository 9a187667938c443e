"""schemathesis hooks for scripts/api-fuzz.sh: what ward's answers must do beyond the built-in checks.

- A request the document allows is never refused as malformed: ward answers 400, 413, 415 or
  422 `urn:ward:problem:invalid` only to requests the document forbids (SCIM's 400s excepted:
  the RFC has them carry invalid values too). Other 422 problem types
  are refusals the document cannot state (an unknown resource, a duration past the policy's
  maximum, a start in the past); the built-in `positive_data_acceptance` is told to allow 422,
  and this check holds the line on `invalid`.
- In stateful scenarios, requests for access are steered towards ones the quickstart's policies
  let alice file and bob approve alone (`read` on payments-api or checkout-web, now, for ten
  minutes, not break-glass), so that scenarios get past filing to deciding, releasing and
  revoking; a grant also outlives its scenario (a 1-second grant expires first). The other
  phases send what they generate.
- The tokens the run authenticates with are never revoked (a revocation naming one names an
  unknown token instead); the spare tokens api-fuzz.sh mints are fair game.
- Pushed JSON lines are sent as the document describes them: each line one JSON value.
- Streamed JSON lines (log search and tail) conform line by line.
- The stateful phase's reach is recorded: which of approving, releasing and revoking succeeded
  with ids taken from earlier answers (api-fuzz.sh requires all three).
"""

import json
import os

import jsonschema
import schemathesis
from schemathesis import GenerationMode

MALFORMED = {400, 413, 415}


def problem_type(response):
    try:
        return json.loads(response.content).get("type")
    except (ValueError, AttributeError):
        return None


def is_positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


ASKING_FOR_TIME = {"POST /v1/requests", "POST /v1/grants/{id}/extend"}
APPROVABLE_BY_ONE = ["logs:payments-api", "logs:checkout-web"]


OWN_TOKENS = set(os.environ.get("WARD_FUZZ_OWN_TOKENS", "").split())
SPARE_TOKEN = "tok_" + "0" * 32


@schemathesis.hook
def map_case(ctx, case):
    if case.operation.label == "POST /v1/tokens/{id}/revoke" and case.path_parameters:
        if case.path_parameters.get("id") in OWN_TOKENS:
            # Another token: the run's own must stay valid to the end.
            case.path_parameters["id"] = SPARE_TOKEN
        return case
    body = case.body
    stateful = case.meta is not None and case.meta.phase.name == "stateful"
    if not (stateful and case.operation.label in ASKING_FOR_TIME and isinstance(body, dict)):
        return case
    if body.get("duration_seconds") is not None:
        body["duration_seconds"] = 600
    if body.get("duration") is not None:
        body["duration"] = "10m"
    if case.operation.label == "POST /v1/requests":
        resource = body.get("resource")
        body["resource"] = resource if resource in APPROVABLE_BY_ONE else APPROVABLE_BY_ONE[len(str(resource)) % 2]
        body["role"] = "read"
        body.pop("start_at", None)
        body.pop("breakglass", None)
    return case


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx, value):
    """The body of `POST /v1/logs/{resource}`: the document describes one line; send it as one."""
    if isinstance(value, bytes):
        return value
    return (json.dumps(value) + "\n").encode()


@schemathesis.check
def allowed_requests_are_not_called_malformed(ctx, response, case):
    # SCIM answers 400 with a `scimType` for invalid values too (RFC 7644 §3.12).
    if not is_positive(case) or case.path.startswith("/scim/"):
        return None
    invalid = response.status_code == 422 and problem_type(response) == "urn:ward:problem:invalid"
    if response.status_code in MALFORMED or invalid:
        raise AssertionError(
            f"a request the document allows was refused as malformed ({response.status_code}): "
            f"{response.content[:300]!r}"
        )
    return None


def _line_validator(case, name):
    document = case.operation.schema.raw_schema
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


@schemathesis.check
def json_lines_conform(ctx, response, case):
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if response.status_code != 200 or not case.path.startswith("/v1/logs/"):
        return None
    if not content_type.startswith("application/x-ndjson"):
        raise AssertionError(f"a log read answered {content_type!r}, not application/x-ndjson")
    validator = _line_validator(case, "LogItemView")
    for number, line in enumerate(response.content.decode().splitlines(), start=1):
        errors = list(validator.iter_errors(json.loads(line)))
        if errors:
            raise AssertionError(f"line {number} does not conform: {errors[0].message}")
    return None


@schemathesis.check
class LifecycleReached:
    """Which of approving, releasing and revoking succeeded in the stateful phase with real ids.

    Written to WARD_FUZZ_LIFECYCLE_FILE, one operation a line; api-fuzz.sh decides whether the
    runs together went the whole way."""

    OPERATIONS = {
        "POST /v1/requests/{id}/approve",
        "POST /v1/grants/{id}/release",
        "POST /v1/grants/{id}/revoke",
    }

    def __init__(self):
        self.succeeded = set()

    def after_response(self, ctx, response, case):
        label = case.operation.label
        if label in self.OPERATIONS and 200 <= response.status_code < 300:
            self.succeeded.add(label)

    def after_run(self, ctx):
        path = os.environ.get("WARD_FUZZ_LIFECYCLE_FILE")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.writelines(f"{label}\n" for label in sorted(self.succeeded))
