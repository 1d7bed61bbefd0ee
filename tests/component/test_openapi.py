"""docs/openapi.json kept honest: served as is, valid OpenAPI 3.0.3, in step with the request
parsing of livy_json.cpp, and every answer the test provokes from a live server (no Spark code
runs) valid against the schema documented for its status. (That the route table of api.cpp is
exactly the documented one is checked by tests/unit/api_routes_test.cpp.)"""
import json
import re
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT4

REPO = Path(__file__).resolve().parents[2]
DOC_FILE = REPO / "docs" / "openapi.json"
LIVY_JSON_CPP = REPO / "server" / "src" / "livy_json.cpp"
STATES_CPP = REPO / "session" / "src" / "states.cpp"

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DOC_URI = "urn:hearth:openapi"
SLOW_START_CONF = {"spark.ui.enabled": False}


@pytest.fixture(scope="module")
def doc():
    return json.loads(DOC_FILE.read_text(encoding="utf-8"))


def escape(segment):
    """One JSON-pointer segment."""
    return segment.replace("~", "~0").replace("/", "~1")


def documented_operations(doc):
    return {(method, path) for path, item in doc["paths"].items() for method in item
            if method in HTTP_METHODS}


def not_served_operations(doc):
    return {(method, path) for method, path in documented_operations(doc)
            if "501" in doc["paths"][path][method]["responses"]}


def cpp_function(source, signature):
    start = source.index(signature)
    return source[start:source.index("\n}\n", start)]


def parsed_fields(function):
    """Fields one of livy_json.cpp's request parsers accepts, and those it requires."""
    body = cpp_function(LIVY_JSON_CPP.read_text(), function)
    return set(re.findall(r'key == "(\w+)"', body)), set(re.findall(r"field '(\w+)' is required", body))


def state_names(array):
    source = STATES_CPP.read_text()
    body = re.search(array + r"\s*=\s*\{([^}]*)\}", source).group(1)
    return re.findall(r'"(\w+)"', body)


def reachable_schemas(doc, node, seen):
    """Every schema object reachable from `node` (following $refs), each once."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen[name] = doc["components"]["schemas"][name]
                reachable_schemas(doc, seen[name], seen)
            return
        if node.get("type") == "object":
            seen.setdefault(id(node), node)
        for value in node.values():
            reachable_schemas(doc, value, seen)
    elif isinstance(node, list):
        for value in node:
            reachable_schemas(doc, value, seen)


def response_schemas(doc):
    roots = [r for item in doc["paths"].values() for method, op in item.items() if method in HTTP_METHODS
             for r in op["responses"].values()]
    seen = {}
    for root in roots:
        if "$ref" in root:
            root = doc["components"]["responses"][root["$ref"].rsplit("/", 1)[-1]]
        reachable_schemas(doc, root.get("content", {}), seen)
    return seen


class Contract:
    """Sends requests to a live server and checks every answer against the document."""

    def __init__(self, server, doc):
        self.server = server
        self.doc = doc
        self.registry = Registry().with_resource(DOC_URI, DRAFT4.create_resource(doc))
        self.values = {"sid": 0, "jobid": 1}
        self.answered = {}  # (method, path) -> statuses seen

    def at(self, pointer):
        node = self.doc
        for segment in pointer.split("/")[1:]:
            node = node[segment.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node, pointer):
        while "$ref" in node:
            assert node["$ref"].startswith("#/"), node["$ref"]
            pointer = node["$ref"][1:]
            node = self.at(pointer)
        return node, pointer

    def errors(self, instance, pointer):
        schema = {"$ref": f"{DOC_URI}#{quote(pointer, safe='/~')}"}
        validator = OAS30Validator(schema, registry=self.registry, format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in validator.iter_errors(instance)]

    def request_schema(self, method, path):
        op = self.doc["paths"][path][method]
        if "requestBody" not in op:
            return None
        pointer = f"/paths/{escape(path)}/{method}/requestBody/content/application~1json/schema"
        return pointer if "application/json" in op["requestBody"]["content"] else None

    def call(self, method, path, *, status, params=None, json=None, data=None, headers=None,
             untyped=False, **values):
        """Sends `method path` (with `{…}` filled from the test's values), checks the answer against
        the document and that its status is `status`. `untyped`: the answer carries no Content-Type."""
        url = self.server.url + path.format(**{**self.values, **values})
        r = requests.request(method, url, params=params, json=json, data=data, headers=headers,
                             timeout=120)
        where = f"{method.upper()} {url} -> {r.status_code} {r.text[:300]!r}"
        assert not (r.status_code == 404 and r.text.startswith('{"msg":"no such resource')), \
            f"the router does not know a documented operation: {where}"
        assert r.status_code == status, where
        self.check(method, path, r, where, untyped)
        pointer = self.request_schema(method, path)
        if pointer and json is not None and 200 <= r.status_code < 300:
            assert not self.errors(json, pointer), f"accepted a body the document refuses: {where}"
        return r

    def check(self, method, path, r, where, untyped):
        assert path in self.doc["paths"] and method in self.doc["paths"][path], f"undocumented: {where}"
        op_pointer = f"/paths/{escape(path)}/{method}"
        responses = self.at(op_pointer)["responses"]
        status = str(r.status_code)
        assert status in responses, f"status not documented for this operation: {where}"
        response, pointer = self.resolve(responses[status], f"{op_pointer}/responses/{status}")
        content = response.get("content")
        if not content:
            assert r.content == b"", f"documented without a body: {where}"
        else:
            media_type = r.headers.get("Content-Type", "").split(";")[0].strip()
            if untyped:
                assert not media_type and len(content) == 1, where
                media_type = next(iter(content))
            assert media_type in content, f"media type {media_type!r} not documented: {where}"
            body = r.json() if media_type == "application/json" else r.text
            errors = self.errors(body, f"{pointer}/content/{escape(media_type)}/schema")
            assert not errors, f"answer does not match the document: {where}\n" + "\n".join(errors)
        for name, header in response.get("headers", {}).items():
            header, header_pointer = self.resolve(header, f"{pointer}/headers/{escape(name)}")
            if header.get("required"):
                assert name in r.headers, f"missing documented header {name}: {where}"
            if name in r.headers:
                assert not self.errors(r.headers[name], f"{header_pointer}/schema"), \
                    f"header {name}={r.headers[name]!r} does not match the document: {where}"
        self.answered.setdefault((method, path), set()).add(r.status_code)

    def example(self, method, path):
        pointer = self.request_schema(method, path)
        if not pointer:
            return None
        schema, _ = self.resolve(self.at(pointer), pointer)
        return schema["example"]


def test_served_document_is_the_repository_file(hearth, doc):
    r = hearth.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == doc, "rebuild hearth-server: GET /openapi.json differs from docs/openapi.json"


def test_document_is_valid_openapi_3_0_3(doc):
    assert doc["openapi"] == "3.0.3"
    validate_openapi(doc)
    operation_ids = [doc["paths"][path][method]["operationId"] for method, path in documented_operations(doc)]
    assert len(operation_ids) == len(set(operation_ids))
    # OAS 3.0.3: `nullable` adds null only to the `type` of the same schema object.
    nullable_without_type = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("nullable") is True and "type" not in node:
                nullable_without_type.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")
    walk(doc, "#")
    assert not nullable_without_type


def test_not_served_endpoints_are_documented_as_such(doc):
    for method, path in not_served_operations(doc):
        responses = set(doc["paths"][path][method]["responses"])
        # 400: the CSRF check runs before the handler on every POST/DELETE.
        assert responses == ({"501"} if method == "get" else {"400", "501"}), (method, path)
        assert doc["paths"][path][method]["tags"] == ["not served yet"]


def test_response_schemas_have_exact_key_sets(doc):
    schemas = response_schemas(doc)
    assert {"Session", "Statement", "SessionList", "StatementList", "SessionLog", "SessionStateInfo",
            "Version", "Candidates", "Error", "AppInfo", "StatementOutputOk", "StatementOutputError",
            "Driver", "DriverList", "DriverProfile", "DriverLoad", "Job", "JobList"} <= set(schemas)
    for name, schema in schemas.items():
        if "properties" in schema:
            assert schema.get("additionalProperties") is False, name
            assert sorted(schema.get("required", [])) == sorted(schema["properties"]), name
    output = doc["components"]["schemas"]["Statement"]["properties"]["output"]["oneOf"]
    assert {"$ref": "#/components/schemas/StatementOutputOk"} in output
    assert {"$ref": "#/components/schemas/StatementOutputError"} in output


@pytest.mark.parametrize("schema, parser", [
    ("CreateSessionRequest", "Result<session::SessionRequest> parse_create_session("),
    ("StatementRequest", "Result<StatementRequest> parse_create_statement("),
    ("CompletionRequest", "Result<CompletionRequest> parse_completion("),
    ("StartJobRequest", "Result<session::JobRequest> parse_start_job("),
])
def test_request_schemas_match_the_parsers(doc, schema, parser):
    accepted, required = parsed_fields(parser)
    documented = doc["components"]["schemas"][schema]
    assert set(documented["properties"]) == accepted
    assert set(documented.get("required", [])) == required
    assert documented["additionalProperties"] is False  # unknown fields answer 400


def test_state_enums_are_the_servers(doc):
    schemas = doc["components"]["schemas"]
    assert schemas["SessionState"]["enum"] == state_names("kSessionStateNames")
    assert schemas["StatementState"]["enum"] == state_names("kStatementStateNames")
    assert schemas["JobState"]["enum"] == state_names("kJobStateNames")
    # A driver is stored `ready`; REST tells `idle` from `busy` by its load, and shows
    # `recovering` while it is silent or, after a server restart, not yet back.
    driver_states = [shown for stored in state_names("kDriverStateNames")
                     for shown in (("idle", "busy", "recovering") if stored == "ready" else (stored,))]
    assert schemas["DriverState"]["enum"] == driver_states


# Bodies the server refuses with 400 that the documented request schema refuses as well.
BAD_SESSION_BODIES = [
    {"kind": "pyspark", "colour": "blue"},
    {"kind": "cobol"},
    {"kind": 5},
    {"driverCores": "two"},
    {"jars": "a.jar"},
    {"conf": {"spark.x": {"nested": 1}}},
    {"ttl": "5 minutes"},
    {"shareLevel": "group"},
    {"shareLevel": 1},
]

# Job requests the server refuses with 400 that the documented request schema refuses as well.
BAD_JOB_BODIES = [
    {},
    {"className": ""},
    {"className": 5},
    {"className": "a.B", "args": "x"},
    {"className": "a.B", "args": [1]},
    {"className": "a.B", "conf": {"k": {"nested": 1}}},
    {"className": "a.B", "jar": 5},
    {"className": "a.B", "colour": "blue"},
]


def test_live_answers_match_the_document(hearth, doc):
    c = Contract(hearth, doc)
    c.call("get", "/version", status=200)
    c.call("get", "/openapi.json", status=200)

    name = f"openapi-{uuid.uuid4().hex[:8]}"
    created = c.call("post", "/sessions", status=201,
                     json={"kind": "pyspark", "name": name, "conf": SLOW_START_CONF})
    c.values["id"] = created.json()["id"]
    try:
        # Statement 0 is cancelled while it waits; statement 1 is still waiting when the session
        # stops and so finishes with an error output.
        first = c.call("post", "/sessions/{id}/statements", status=201, json={"code": "1 + 1"})
        assert first.json()["id"] == 0 and first.json()["output"] is None
        c.call("post", "/sessions/{id}/statements", status=201, json=c.example("post", "/sessions/{id}/statements"))

        c.call("get", "/sessions", status=200, params={"from": 0, "size": 1000})
        c.call("get", "/sessions/{id}", status=200)
        assert c.call("get", "/sessions/{id}", status=200, id=name).json()["id"] == c.values["id"]
        c.call("get", "/sessions/{id}/state", status=200)
        c.call("get", "/sessions/{id}/log", status=200, params={"size": -1})
        c.call("get", "/sessions/{id}/statements", status=200, params={"order": "desc", "from": 0, "size": 5})
        c.call("get", "/sessions/{id}/statements/{sid}", status=200, params={"wait": 1})
        c.call("post", "/sessions/{id}/completion", status=200, json=c.example("post", "/sessions/{id}/completion"))
        c.call("post", "/sessions/{id}/connect", status=200, json={})
        c.call("post", "/sessions/{id}/statements/{sid}/cancel", status=200, json={})
        cancelled = c.call("get", "/sessions/{id}/statements/{sid}", status=200).json()
        assert cancelled["state"] == "cancelled" and cancelled["output"] is None

        # Hearth: the session's driver (still starting), and a job queued on it and cancelled.
        driver = c.call("get", "/sessions/{id}/driver", status=200).json()
        c.values["driver"] = driver["id"]
        listed = c.call("get", "/drivers", status=200).json()
        assert driver["id"] in [d["id"] for d in listed["drivers"]]
        assert c.call("get", "/drivers/{driver}", status=200).json()["sessions"] == [c.values["id"]]
        job = c.call("post", "/sessions/{id}/jobs", status=201, json=c.example("post", "/sessions/{id}/jobs"))
        c.values["jobid"] = job.json()["id"]
        assert job.json()["state"] == "queued" and job.json()["result"] is None
        c.call("get", "/sessions/{id}/jobs", status=200)
        c.call("get", "/sessions/{id}/jobs/{jobid}", status=200)
        assert c.call("post", "/sessions/{id}/jobs/{jobid}/cancel", status=200, json={}).json()["state"] == "cancelled"

        # Errors.
        for body in BAD_SESSION_BODIES:
            c.call("post", "/sessions", status=400, json=body)
            assert c.errors(body, c.request_schema("post", "/sessions")), f"the document accepts {body}"
        for body in ['{"kind": "pyspark"', "[1, 2]"]:
            c.call("post", "/sessions", status=400, data=body, headers={"Content-Type": "application/json"})
        c.call("post", "/sessions", status=400, json={"name": "123"})
        c.call("post", "/sessions", status=400, json={"name": name})
        c.call("post", "/sessions", status=400, json={"conf": {"spark.master": "yarn"}})
        # Pistache answers 413 before routing, with a plain-text body and no Content-Type.
        c.call("post", "/sessions", status=413, data="{" + " " * (17 << 20) + "}", untyped=True)
        c.call("get", "/sessions", status=400, params={"from": "x"})
        c.call("get", "/sessions/{id}/log", status=400, params={"size": "x"})
        c.call("get", "/sessions/{id}/statements", status=400, params={"order": "sideways"})
        c.call("get", "/sessions/{id}/statements/{sid}", status=400, params={"wait": "x"})
        c.call("get", "/sessions/{id}/statements/{sid}", status=404, sid=4242)
        c.call("post", "/sessions/{id}/statements/{sid}/cancel", status=404, sid=4242)
        c.call("post", "/sessions/{id}/statements", status=400, data="{nope")
        c.call("post", "/sessions/{id}/statements", status=400, json={"code": 1})
        c.call("post", "/sessions/{id}/completion", status=400, json={"code": "x"})
        for body in BAD_JOB_BODIES:
            c.call("post", "/sessions/{id}/jobs", status=400, json=body)
            assert c.errors(body, c.request_schema("post", "/sessions/{id}/jobs")), f"the document accepts {body}"
        c.call("post", "/sessions/{id}/jobs", status=400, json={"className": "a.B", "jar": "file:///etc/passwd"})
        c.call("get", "/sessions/{id}/jobs/{jobid}", status=404, jobid=4242)
        c.call("get", "/sessions/{id}/jobs/{jobid}", status=404, jobid="x")
        c.call("post", "/sessions/{id}/jobs/{jobid}/cancel", status=404, jobid=4242)
        c.call("get", "/drivers/{driver}", status=404, driver="no-such-driver")
        c.call("delete", "/drivers/{driver}", status=404, driver="no-such-driver")
        served = documented_operations(doc) - not_served_operations(doc)
        for method, path in sorted(op for op in served if "{id}" in op[1]):
            c.call(method, path, status=404, id="no-such-session", json=c.example(method, path))
        for method, path in sorted(not_served_operations(doc)):
            c.call(method, path, status=501)

        # Stop (204), then what a stopped session answers.
        c.call("post", "/sessions/{id}/stop", status=204)
        # Statement 1 is `cancelled` (the stop ended it), unless the driver came up and ran it
        # first (`available` with an output, checked against the document).
        finished = c.call("get", "/sessions/{id}/statements/{sid}", status=200, sid=1).json()
        assert (finished["state"] == "cancelled" or
                (finished["state"] == "available" and finished["output"] is not None)), finished
        assert c.call("get", "/sessions/{id}/state", status=200).json()["state"] == "dead"
        c.call("post", "/sessions/{id}/statements", status=400, json={"code": "1"})
        c.call("post", "/sessions/{id}/jobs", status=400, json={"className": "a.B"})
        c.call("post", "/sessions/{id}/interrupt", status=200)
    finally:
        deleted = hearth.delete(f"/sessions/{c.values['id']}")
    assert deleted.status_code == 200, deleted.text
    c.check("delete", "/sessions/{id}", deleted, "DELETE /sessions/{id}", untyped=False)
    c.call("get", "/sessions/{id}", status=404)
    c.call("delete", "/sessions/{id}", status=404)
    c.call("get", "/sessions/{id}/driver", status=404)

    # Stopping drivers: one through its session, one by its id.
    for share_level, delete_path in (("user", "/sessions/{id}/driver"), ("session", "/drivers/{driver}")):
        other = c.call("post", "/sessions", status=201,
                       json={"kind": "pyspark", "shareLevel": share_level, "conf": SLOW_START_CONF}).json()
        try:
            driver = c.call("get", "/sessions/{id}/driver", status=200, id=other["id"]).json()
            assert driver["shareLevel"] == share_level and other["id"] in driver["sessions"]
            c.call("delete", delete_path, status=200, id=other["id"], driver=driver["id"])
            c.call("get", "/drivers/{driver}", status=404, driver=driver["id"])
            c.call("delete", "/sessions/{id}/driver", status=404, id=other["id"])
        finally:
            assert hearth.delete(f"/sessions/{other['id']}").status_code == 200

    unexercised = documented_operations(doc) - set(c.answered)
    assert not unexercised, f"documented operations the test never called: {sorted(unexercised)}"
