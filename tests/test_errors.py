"""Every error body is built by one function, with names that do not change with Python."""

from __future__ import annotations

import pytest

from errors import PayloadTooLarge, UnprocessableEntity, error_body


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (409, "Conflict"),
        (410, "Gone"),
        (413, "Payload Too Large"),  # Python 3.13 says "Content Too Large"
        (422, "Unprocessable Entity"),  # Python 3.13 says "Unprocessable Content"
        (429, "Too Many Requests"),
        (503, "Service Unavailable"),
        (599, "Error"),  # no standard phrase
    ],
)
def test_the_error_field_is_the_documents_reason_phrase(status: int, phrase: str) -> None:
    assert error_body(status, "why") == {"error": phrase, "detail": "why", "status_code": status}


def test_an_error_class_answers_with_its_status_and_the_envelope() -> None:
    response = UnprocessableEntity("No watermark was found").to_response()
    assert response.status_code == 422
    assert b'"error":"Unprocessable Entity"' in response.body
    assert PayloadTooLarge("x").to_response().status_code == 413
