"""Show times in the user's time zone (stored in UTC). The browser reports its zone in a cookie
set by static/js/hearth.js; an unknown or missing zone falls back to UTC."""

import zoneinfo

from django.utils import timezone

COOKIE = "hearth_tz"


class UserTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.COOKIES.get(COOKIE, "")
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
