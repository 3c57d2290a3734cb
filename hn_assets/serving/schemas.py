"""Request and response schemas of the scoring service, and the limits on what it accepts.

Validation is pydantic v2 (`model_validate_json`, compiled once): a violation becomes a 422 whose
body names each offending field by its path (`validation_detail`). Limits are checked before any
parsing work: a body over `MAX_BODY_BYTES` or a batch over `MAX_EVENTS_PER_REQUEST` is a 413.
The OpenAPI document (`openapi()`) is generated from these same models, so every field's
description is the one written here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hn_assets.contracts import CHANNELS, DEVICES, EVENT_TYPES, SCHEMA_VERSION

MAX_BODY_BYTES = 256 * 1024  # one request body; over it: 413
MAX_EVENTS_PER_REQUEST = 500  # events in one /events batch; over it: 413
_ID = Annotated[str, Field(min_length=1, max_length=128)]


class Consent(BaseModel):
    """The visitor's consent as the consent banner states it at this moment (the source of truth)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    analytics: bool = Field(
        description="Analytics consent. Without it the visitor is known only for the day (a day-salted "
        "token, no user id, no client session id), exactly as bronze ingest treats the events."
    )
    personalisation: bool = Field(
        description="Personalisation consent. Without it the user's history features are not read and the "
        "answer says so (`personalised: false`)."
    )


class Context(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    device: Literal[DEVICES] | None = Field(None, description=f"The client's device, one of {list(DEVICES)}.")  # type: ignore[valid-type]
    channel: Literal[CHANNELS] | None = Field(None, description=f"The acquisition channel, one of {list(CHANNELS)}.")  # type: ignore[valid-type]
    page_type: str | None = Field(None, max_length=64, description="The page being shown (informational).")
    timezone: str | None = Field(
        None, max_length=64, description="The visitor's IANA timezone, used for a session with no events yet."
    )


class ScoreRequest(BaseModel):
    """POST /score: score the visitor's current session (resolved by the 30-minute rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    visitor_id: _ID = Field(description="The shop's raw visitor id (pseudonymised by the service, never stored raw).")
    user_id: _ID | None = Field(None, description="The shop's raw customer id when the visitor is logged in.")
    client_session_id: _ID | None = Field(
        None, description="The client's own session id: kept as an attribute, never the key."
    )
    consent: Consent = Field(
        description="The consent banner's flags at this moment (they decide what is read and logged)."
    )
    context: Context = Field(default_factory=Context, description="Optional request context.")
    as_of: datetime | None = Field(
        None,
        description="Scoring time (UTC; default: now). For replays and backtests: request-time features "
        "are computed at this instant.",
    )
    request_id: str | None = Field(None, max_length=64, description="The caller's request id (default: generated).")

    @field_validator("as_of")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("as_of needs a timezone (e.g. 2026-09-01T12:00:00Z)")
        return value


class Reason(BaseModel):
    feature: str = Field(description="Model input name.")
    value: float | str | None = Field(description="The value the model saw.")
    contribution: float = Field(
        description="Its contribution to the booster's log-odds of purchase: tree path (Saabas) contributions, "
        "or TreeSHAP values when the service runs with HN_SERVING_REASONS=shap."
    )


class Decision(BaseModel):
    offer_discount: bool = Field(description="Whether to show the discount: expected gain above the policy cutoff.")
    p0: float | None = Field(description="P(purchase) without the offer (uplift model).")
    p1: float | None = Field(description="P(purchase) with the offer (uplift model).")
    margin: float = Field(description="Margin of a typical basket (EUR).")
    discount: float = Field(description="The discount's cost on a typical basket (EUR).")
    expected_gain: float | None = Field(description="(p1 - p0) * margin - p1 * discount (EUR).")
    cutoff: float | None = Field(
        description="Offer when the expected gain exceeds this (EUR), learnt on held-out offers; null when the "
        "learnt depth is everyone or no one (`reason` says which)."
    )
    reason: str = Field(
        description="`policy`, `policy: offer to everyone` / `policy: offer to no one`, or why no offer was "
        "considered (e.g. `no uplift model`)."
    )


class ScoreResponse(BaseModel):
    request_id: str = Field(
        description="The caller's request id, or one the service generated (also in the inference log)."
    )
    session_key: str = Field(description="`<visitor token>#<n>`: the session by the 30-minute rule.")
    new_session: bool = Field(description="True when no event of this session has been seen (normal traffic).")
    probability: float = Field(description="Calibrated purchase probability of the session.")
    raw_score: float | None = Field(description="The model's uncalibrated score (None on fallback).")
    decision: Decision = Field(description="The discount decision of the expected-value policy, with its inputs.")
    reasons: list[Reason] = Field(description="Top three feature contributions (empty on fallback).")
    model_version: str | None = Field(description="MLflow version of the champion (None when no model is loaded).")
    fallback: bool = Field(description="True: the answer is the documented fallback (segment prior), not the model.")
    fallback_reason: str | None = Field(description="Why the fallback was used.")
    feature_groups: list[str] = Field(description="Feature groups read: session, user_history, product_signals.")
    personalised: bool = Field(description="False when personalisation consent is missing: no user history read.")


class LiveEvent(BaseModel):
    """One clickstream event in the landing contract (contracts.FEEDS['clickstream_events'])."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int = Field(SCHEMA_VERSION, description="Contract version of the record.")
    event_id: _ID = Field(description="The event's unique id (the batch layer de-duplicates on it).")
    event_type: Literal[EVENT_TYPES] = Field(description=f"One of {list(EVENT_TYPES)}.")  # type: ignore[valid-type]
    event_timestamp: datetime = Field(description="When it happened (with timezone, e.g. ...Z).")
    visitor_id: _ID = Field(description="The shop's raw visitor id (pseudonymised by the service, as by bronze).")
    client_session_id: _ID | None = Field(None, description="The client's own session id (an attribute, not the key).")
    user_id: _ID | None = Field(None, description="The shop's raw customer id when the visitor is logged in.")
    analytics_consent: bool = Field(
        description="The visitor's analytics consent at the event: without it the event is kept only for the day."
    )
    product_id: str | None = Field(None, max_length=64, description="The product viewed, added or bought.")
    category: str | None = Field(None, max_length=64, description="The product's category.")
    brand: str | None = Field(None, max_length=64, description="The product's brand.")
    price: float | None = Field(None, ge=0, description="The price shown (EUR, >= 0).")
    search_query: str | None = Field(None, max_length=256, description="The query of a `search` event.")
    page_type: str | None = Field(None, max_length=64, description="The page the event happened on.")
    order_id: str | None = Field(None, max_length=64, description="The order of a `purchase` event.")
    device: Literal[DEVICES] | None = Field(None, description=f"The client's device, one of {list(DEVICES)}.")  # type: ignore[valid-type]
    channel: Literal[CHANNELS] | None = Field(None, description=f"The acquisition channel, one of {list(CHANNELS)}.")  # type: ignore[valid-type]
    country: str | None = Field(None, max_length=8, description="ISO country code of the visitor.")
    timezone: str = Field(max_length=64, description="IANA timezone of the visitor.")
    source: str = Field("web", max_length=32, description="Where the event came from (default `web`).")

    @field_validator("event_timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("event_timestamp needs a timezone (e.g. 2026-09-01T12:00:00Z)")
        return value

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        from hn_assets.features.request_time import _zone

        try:
            _zone(value)
        except Exception as exc:
            raise ValueError(f"not an IANA timezone: {value[:64]!r}") from exc
        return value


class EventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    events: list[LiveEvent] = Field(min_length=1, description=f"1 to {MAX_EVENTS_PER_REQUEST} events.")


class EventsResponse(BaseModel):
    accepted: int = Field(description="Events applied to their sessions (all of the batch, or a 4xx).")
    sessions: list[str] = Field(description="Session keys the events were placed in, in order.")
    snapshots_pushed: int = Field(description="In-session feature snapshots written to the online store.")


class TooLarge(ValueError):
    """A body or batch over the limits: 413."""


def parse_events(body: bytes) -> EventsRequest:
    """One event (an object) or a batch (`{"events": [...]}` or a list) -> EventsRequest; 413 when
    the batch is too large (counted before the events are validated)."""
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError.from_exception_data(
            "EventsRequest", [{"type": "json_invalid", "loc": ("body",), "input": "", "ctx": {"error": str(exc)}}]
        ) from exc
    if isinstance(data, list):
        data = {"events": data}
    elif isinstance(data, dict) and "events" not in data:
        data = {"events": [data]}
    events = data.get("events") if isinstance(data, dict) else None
    if isinstance(events, list) and len(events) > MAX_EVENTS_PER_REQUEST:
        raise TooLarge(f"{len(events)} events in one request; at most {MAX_EVENTS_PER_REQUEST}")
    return EventsRequest.model_validate(data)


def validation_detail(error: ValidationError) -> list[dict]:
    """The 422 body: each error with its field path (`loc`, e.g. ["consent", "analytics"]), `field`
    (the same, dotted) and message."""
    out = []
    for e in error.errors(include_url=False, include_input=False):
        loc = [str(part) for part in e["loc"]]
        out.append({"field": ".".join(loc), "loc": loc, "msg": e["msg"], "type": e["type"]})
    return out


def openapi() -> dict:
    """The OpenAPI 3.1 document of the service, from the models above."""
    from pydantic.json_schema import models_json_schema

    _, schemas = models_json_schema(
        [(m, "validation") for m in (ScoreRequest, EventsRequest, LiveEvent)]
        + [(m, "serialization") for m in (ScoreResponse, EventsResponse)],
        ref_template="#/components/schemas/{model}",
    )
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}
    errors = {
        "401": {"description": "Missing or wrong API key (header `X-API-Key`, when HN_SERVING_API_KEY is set)."},
        "413": {"description": f"Body over {MAX_BODY_BYTES} bytes or more than {MAX_EVENTS_PER_REQUEST} events."},
        "422": {"description": "Schema violation: `detail[].field` names each offending field."},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "H.N purchase intent",
            "version": "1",
            "description": "Live scoring of a visitor's session with the champion model; live events.",
        },
        "paths": {
            "/score": {
                "post": {
                    "summary": "Score the visitor's current session",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ScoreRequest")}}},
                    "responses": {
                        "200": {
                            "description": "Score",
                            "content": {"application/json": {"schema": ref("ScoreResponse")}},
                        },
                        **errors,
                    },
                }
            },
            "/events": {
                "post": {
                    "summary": "Post live events (one event object, a list, or {events: [...]})",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"anyOf": [ref("LiveEvent"), ref("EventsRequest")]}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Accepted",
                            "content": {"application/json": {"schema": ref("EventsResponse")}},
                        },
                        **errors,
                    },
                }
            },
            "/readyz": {"get": {"summary": "200 once the model is loaded, 503 before"}},
            "/metrics": {"get": {"summary": "Prometheus metrics"}},
        },
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
