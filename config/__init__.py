# The project package is `config`, not `platform`: a `platform` package would shadow the
# standard-library module that torch, kombu and uuid import.
from .celery import app as celery_app

__all__ = ("celery_app",)
