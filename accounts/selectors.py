from .models import ApiToken


def api_token_list(*, user):
    """A user's own tokens, newest first."""
    return ApiToken.objects.filter(user=user)
