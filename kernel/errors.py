"""One exception tree for the whole product.

Every error carries a stable kebab-case id and an HTTP status, so that the web
layer can turn any of them into the API's JSON error shape without knowing
where it came from. Library errors are translated into these once, at the
adapter that meets them.
"""

from __future__ import annotations

from typing import Any


class CentralitaError(Exception):
    """Base of every error the product raises on purpose."""

    error_id = "centralita-error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.error_id, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


class ValidationFailed(CentralitaError):
    error_id = "invalid-input"
    status = 422


class NotFound(CentralitaError):
    error_id = "not-found"
    status = 404


class Unauthorized(CentralitaError):
    error_id = "not-authenticated"
    status = 401


class Forbidden(CentralitaError):
    error_id = "forbidden"
    status = 403


class Conflict(CentralitaError):
    error_id = "conflict"
    status = 409


class RateLimited(CentralitaError):
    error_id = "rate-limited"
    status = 429


class PBXError(CentralitaError):
    """Something went wrong between us and a PBX."""

    error_id = "pbx-error"
    status = 502


class PBXUnavailable(PBXError):
    error_id = "pbx-unavailable"
    status = 503


class AMILinkLost(PBXError):
    """The AMI link dropped while an action waited for its answer.

    Such actions are failed, never re-sent: re-sending an Originate after a
    reconnect can ring a customer twice.
    """

    error_id = "ami-link-lost"
    status = 503


class AMIActionTimeout(PBXError):
    error_id = "ami-action-timeout"
    status = 504


class AMIProtocolError(PBXError):
    """A frame that does not follow the AMI wire format."""

    error_id = "ami-protocol-error"


class AMIActionFailed(PBXError):
    """Asterisk answered an action with `Response: Error`."""

    error_id = "ami-action-failed"


class WebhookSignatureError(CentralitaError):
    error_id = "bad-webhook-signature"
    status = 403
