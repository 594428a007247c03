"""Carry the request id of the request that enqueued a task into the task's audit records, and
give each task a denial scope (denials recorded inside a rolled-back transaction still land)."""

from celery.signals import before_task_publish, task_postrun, task_prerun

from . import context

_HEADER = "hearth_request_id"
_tokens: dict[str, tuple[object, object]] = {}


@before_task_publish.connect
def _add_request_id(headers=None, **kwargs) -> None:
    request_id = context.current_request_id()
    if headers is not None and request_id:
        headers[_HEADER] = request_id


@task_prerun.connect
def _enter(task_id=None, task=None, **kwargs) -> None:
    from .services import open_denial_scope

    request_id = getattr(task.request, _HEADER, None) or context.new_request_id()
    _tokens[task_id] = (
        context.activate(context.RequestContext(request_id=request_id)),
        open_denial_scope(),
    )


@task_postrun.connect
def _leave(task_id=None, **kwargs) -> None:
    from .services import close_denial_scope

    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        request_token, scope_token = tokens
        try:
            close_denial_scope(scope_token)
        finally:
            context.deactivate(request_token)
