"""The API's OpenAPI 3.1 document, generated from the models the routes validate with, and its interactive docs.

A route declares what it takes and answers with :func:`operation`::

    @bp.post("/api/orders/<number>/release")
    @requires(ACT)
    @operation(body=NoteBody, answers={200: OrderStatus}, tags=["orders"])
    def release(number: str) -> Response:
        note = body(NoteBody).note

spectree checks the query string and body against the models before the view
runs and the answer against its model after; the same models make
``/openapi.json``. A query parameter or body field the model does not name is
refused (400), so a misspelt filter never silently lists everything. Every
refusal is a problem document (:mod:`oms_engine.web.errors`), declared in the
document too. ``/docs`` is Swagger UI, served from the package
(``static/swagger-ui``): nothing is fetched from outside.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Flask, Request, Response, current_app, request, send_from_directory
from pydantic import BaseModel, ConfigDict, Field
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree

from .auth import ROLES
from .errors import PROBLEM_JSON, ApiError, json_response
from .requests import body_json, json_type

log = logging.getLogger("oms.api")

M = TypeVar("M", bound=BaseModel)
STATIC = Path(__file__).parent / "static" / "swagger-ui"


class Problem(BaseModel):
    """RFC 9457 problem details: every refusal and error of the API."""

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = Field(description="the kind of problem: urn:oms:problem:<kind>, or about:blank")
    title: str = Field(description="the HTTP status's phrase")
    status: int
    detail: str = Field(description="what went wrong, for a person")
    field: str | None = Field(None, description="the offending field or parameter, when one is to blame")


class NoQuery(BaseModel):
    """No query parameters: any given is refused."""

    model_config = ConfigDict(extra="forbid")


def _version() -> str:
    try:
        return version("oms-engine")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "0"


class _Spec(SpecTree):
    """spectree bound to whichever app was created last (tests create many; the routes are the same)."""

    def register(self, app: Any) -> None:
        # spectree's own routes would serve its pages from a CDN; ours are below.
        self.app = app


def _refuse_invalid(req: Any, resp: Any, err: Any, instance: Any, *_: Any) -> None:
    """spectree's ``before`` hook: a request that does not match its models is a 400 problem naming the field."""
    if err is None:
        return
    # Query models are named ...Query (a convention of the routes): the error then names a parameter, not a field.
    where = "parameter" if str(getattr(err, "title", "")).endswith("Query") else "field"
    model = _MODELS.get(str(getattr(err, "title", "")))
    errors = [_field_error(e, where, model) for e in err.errors(include_url=False)]
    first = errors[0]
    detail = first["message"] if len(errors) == 1 else "; ".join(e["message"] for e in errors[:10])
    raise ApiError(400, detail, kind="invalid-request", field=first["field"], errors=errors)


def _field_error(err: Mapping[str, Any], where: str, model: type[BaseModel] | None) -> dict[str, str]:
    loc = [str(p) for p in err["loc"]]
    name = ".".join(loc) or "(body)"
    if err["type"] == "extra_forbidden":
        message = f"unknown {where} '{name[:60]}'"
        if model is not None and len(loc) == 1:
            # Naming what is allowed turns a misspelling into a one-step fix.
            message += f"; allowed: {', '.join(f.alias or n for n, f in model.model_fields.items()) or 'none'}"
    elif not loc and err["type"] in ("model_type", "dict_type", "model_attributes_type"):
        message = f"the request body must be a JSON object, got {json_type(err.get('input'))}"
    elif err["type"] == "missing":
        message = f"{where} '{name}' is required"
    else:
        message = f"{where} '{name[:60]}': {str(err['msg']).removeprefix('Value error, ')}"
        if err["type"] in ("literal_error", "enum") and isinstance(err.get("input"), str):
            message += f", got '{err['input'][:40]}'"
    return {"field": name[:100], "message": message}


def _answer_checked(req: Any, resp: Any, err: Any, instance: Any, *_: Any) -> None:
    """spectree's ``after`` hook: an answer that breaks its own schema is our bug, logged and answered 500."""
    if err is not None:
        log.error("the answer to %s %s does not match its documented schema: %s", request.method, request.path, err)
        raise ApiError(500, "internal server error; the details are in the server log")


_NAMED: dict[str, type] = {}


def _component_name(model: type) -> str:
    """A model's own name in the document; two models of one name would be one schema, so that stops the start."""
    name = model.__name__
    if _NAMED.setdefault(name, model) is not model:
        raise TypeError(f"two API models are named {name}: {_NAMED[name].__module__} and {model.__module__}")
    return name


spec = _Spec(
    "flask",
    naming_strategy=_component_name,
    nested_naming_strategy=lambda parent, child: child,
    mode="strict",
    title="oms-engine admin API",
    description="Orders, holds, stock, rules and after-sales of the OMS. Errors are problem+json (RFC 9457).",
    version=_version(),
    validation_error_status=400,
    validation_error_model=Problem,
    before=_refuse_invalid,
    after=_answer_checked,
    annotations=False,
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type="http", scheme="bearer"))],
    security={"bearer": []},
)

# The request models by name, as pydantic's errors name them.
_MODELS: dict[str, type[BaseModel]] = {}
# What every operation may answer besides its own success.
_COMMON = (400, 401, 403, 413, 500)


def operation(*, query: type[BaseModel] | None = None, body: type[BaseModel] | None = None,
              answers: Mapping[int, type[BaseModel] | None], tags: Sequence[str] = (),
              public: bool = False, refusals: Sequence[int] = ()) -> Callable[[Callable[..., Any]], Any]:
    """Declare a route's query, body and answers (status -> model; None: an answer without a documented body).

    ``refusals`` are the statuses besides 400/401/403/413/500 that it may answer with a problem
    (404 for a named record, 409 for a refused command ...). ``public``: no token needed.
    """
    for model in (query, body):
        if model is not None:
            _MODELS[model.__name__] = model
    statuses: dict[str, Any] = {}
    for status, model in answers.items():
        statuses[f"HTTP_{status}"] = model
    for status in (*(_COMMON if not public else (400, 413, 500)), *refusals):
        statuses.setdefault(f"HTTP_{status}", Problem)
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        # Operation ids a client generator turns into method names: the route module and the view.
        operation_id = f"{view.__module__.rsplit('.', 1)[-1]}_{view.__name__}"
        validated = spec.validate(query=query or NoQuery, json=body, resp=Answers(**statuses), tags=list(tags),
                                  security={} if public else None, operation_id=operation_id)(view)
        if body is None:
            return validated

        @functools.wraps(validated)
        def read_body_first(*args: Any, **kwargs: Any) -> Any:
            _read_body()
            return validated(*args, **kwargs)
        return read_body_first
    return decorate


def _read_body() -> None:
    """Parse the body strictly (strict_json: no duplicate keys, NaN or huge numbers; no NUL) before spectree sees it.

    spectree would read a body sent as a form as no body at all, and a person's note would vanish: refused instead.
    """
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and request.content_length:
        raise ApiError(415, f"the body must be JSON (Content-Type: application/json), not {request.mimetype}")
    request.oms_json = body_json(optional=True)  # type: ignore[attr-defined]


class ApiRequest(Request):
    """A request whose JSON is the one :func:`_read_body` parsed, whatever its Content-Type says."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        parsed = getattr(self, "oms_json", None)
        if parsed is not None:
            return parsed
        return super().get_json(force=force, silent=silent, cache=cache)


def body(model: type[M]) -> M:
    """The request body, validated against ``model`` by :func:`operation`."""
    value = request.context.json  # type: ignore[attr-defined]
    if value is None:  # an empty body for a model whose fields are all optional
        value = model()
    assert isinstance(value, model)
    return value


def query(model: type[M]) -> M:
    value = request.context.query  # type: ignore[attr-defined]
    assert isinstance(value, model)
    return value


bp = Blueprint("openapi", __name__)

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>oms-engine admin API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/init.js"></script>
</body>
</html>
"""

# A file of its own rather than inline, so the page works under a Content-Security-Policy without 'unsafe-inline'.
_DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: false, tryItOutEnabled: false});
"""


@bp.get("/openapi.json")
def openapi_document() -> Response:
    if request.args:
        raise ApiError(400, f"unknown parameter '{next(iter(request.args))[:60]}'", field=next(iter(request.args)))
    return json_response(document(current_app))


@bp.get("/docs")
def docs_page() -> Response:
    return Response(_DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/static/init.js")
def docs_init() -> Response:
    return Response(_DOCS_INIT, mimetype="text/javascript")


@bp.get("/docs/static/<any('swagger-ui.css', 'swagger-ui-bundle.js'):name>")
def docs_static(name: str) -> Response:
    resp = send_from_directory(STATIC, name, max_age=86400)
    return resp


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (made once per process: the routes do not change)."""
    spec.app = app
    made = spec.spec
    if id(made) not in _finished:
        _finish(made, _roles(app))
        _finished.add(id(made))
    return made


def _roles(app: Flask) -> dict[str, frozenset[str]]:
    """Operation id -> the roles that may call it (auth.requires marks its views)."""
    found: dict[str, frozenset[str]] = {}
    for view in app.view_functions.values():
        roles = getattr(view, "oms_roles", None)
        if roles is not None:
            found[f"{view.__module__.rsplit('.', 1)[-1]}_{view.__name__}"] = roles
    return found


_finished: set[int] = set()


def _finish(doc: dict[str, Any], roles: Mapping[str, frozenset[str]]) -> None:
    """What spectree does not say: who may call each operation, that problems are problem+json, and that a body
    whose fields are all optional may be left out."""
    schemas = doc["components"]["schemas"]
    for path in doc["paths"].values():
        for op in path.values():
            allowed = roles.get(op["operationId"])
            if allowed is not None:
                op["x-roles"] = [r for r in ROLES if r in allowed]
                said = op.get("description") or ""
                op["description"] = (said + "\n\n" if said else "") + f"Roles: {', '.join(op['x-roles'])}."
            for status, answer in op["responses"].items():
                if status >= "400" and "application/json" in answer.get("content", {}):
                    answer["content"] = {PROBLEM_JSON: answer["content"]["application/json"]}
            request_body = op.get("requestBody")
            if request_body:
                ref = request_body["content"]["application/json"]["schema"].get("$ref", "")
                target = schemas.get(ref.rsplit("/", 1)[-1], {})
                request_body["required"] = bool(target.get("required"))
            if not op.get("description"):
                op.pop("description", None)


def install(app: Flask) -> None:
    app.request_class = ApiRequest
    spec.register(app)
    app.register_blueprint(bp)
