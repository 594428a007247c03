"""JSON errors for every API failure: `{"detail": message, "code": code, "fields": {...}}`."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(data) -> str:
    if isinstance(data, list) and data:
        return _first_message(data[0])
    if isinstance(data, dict) and data:
        return _first_message(next(iter(data.values())))
    return str(data)


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):  # raised by services; same shape as serializers'
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling (and logging) takes over
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "detail": _("Invalid input: %(message)s") % {"message": _first_message(fields)},
            "code": "invalid",
            "fields": fields,
        }
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = {
            "detail": str(detail),
            "code": getattr(detail, "code", None) or getattr(exc, "default_code", "error"),
        }
    return response


def json_error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)
