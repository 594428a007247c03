"""Carry the request id of the request that enqueued a task into the task's audit records."""

from celery.signals import before_task_publish, task_postrun, task_prerun

from . import context

_HEADER = "hearth_request_id"
_tokens: dict[str, object] = {}


@before_task_publish.connect
def _add_request_id(headers=None, **kwargs) -> None:
    request_id = context.current_request_id()
    if headers is not None and request_id:
        headers[_HEADER] = request_id


@task_prerun.connect
def _enter(task_id=None, task=None, **kwargs) -> None:
    request_id = getattr(task.request, _HEADER, None) or context.new_request_id()
    _tokens[task_id] = context.activate(context.RequestContext(request_id=request_id))


@task_postrun.connect
def _leave(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        context.deactivate(token)
