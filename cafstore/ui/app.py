"""The ASGI app of ``cafstore ui``: read-only pages over one store.

Routes take pathspec parts from the URL; each is checked like a command
line's pathspec (cafstore.client.pathspecs) before anything is looked up, so
a malformed one is a 400 page and a well-formed one that names nothing a
404, both with the client's one-paragraph message, never a traceback.
Handlers are ``async`` and do their (fast, local) reads on the event loop:
one request at a time keeps the store's LMDB handles on one thread.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from cafstore.client import Run, Task, pathspecs
from cafstore.exception import CafstoreError, MetaflowInvalidPathspec, NamespaceMismatch, NotFound
from cafstore.ui import pages

_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def create_app(store: Any, default_ns: Optional[str]) -> Any:
    """The app serving ``store``; the runs list starts in namespace ``default_ns`` (None: every run)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def page(handler: Callable[[Request], str]) -> Callable[[Request], Awaitable[HTMLResponse]]:
        async def endpoint(request: Request) -> HTMLResponse:
            try:
                return HTMLResponse(handler(request), headers=_HEADERS)
            except (MetaflowInvalidPathspec, NotFound, NamespaceMismatch) as exc:
                code = 404 if isinstance(exc, NotFound) and not _malformed(request) else 400
                headline = "bad address" if code == 400 else exc.headline
                return HTMLResponse(pages.error_page(headline, str(exc)), status_code=code, headers=_HEADERS)
            except CafstoreError as exc:
                return HTMLResponse(pages.error_page(exc.headline, str(exc)), status_code=500, headers=_HEADERS)
            except Exception as exc:  # a bug must still answer with a page, not a traceback on the wire
                message = f"{type(exc).__name__}: {exc}. The server's terminal has the details."
                import traceback

                traceback.print_exc()
                return HTMLResponse(pages.error_page("internal error", message), status_code=500, headers=_HEADERS)

        return endpoint

    def namespace_of(request: Request) -> Optional[str]:
        if "ns" not in request.query_params:
            return default_ns
        return request.query_params["ns"].strip() or None

    def flows(request: Request) -> str:
        return pages.flows_page(store, namespace_of(request))

    def runs(request: Request) -> str:
        flow = request.path_params["flow"]
        pathspecs.check(flow, "flow")
        before_text = request.query_params.get("before")
        try:
            before = None if not before_text else pathspecs.number(before_text, "run", f"?before={before_text}")
        except NotFound as exc:
            raise MetaflowInvalidPathspec(str(exc)) from exc
        tag = request.query_params.get("tag", "").strip()
        return pages.runs_page(store, flow, namespace_of(request), tag, before)

    def run(request: Request) -> str:
        spec = f"{request.path_params['flow']}/{request.path_params['run']}"
        pathspecs.check(spec, "run")
        return pages.run_page(store, Run(spec, store=store, _namespace_check=False))

    def task(request: Request) -> str:
        p = request.path_params
        spec = f"{p['flow']}/{p['run']}/{p['step']}/{p['task']}"
        pathspecs.check(spec, "task")
        return pages.task_page(store, Task(spec, store=store, _namespace_check=False))

    routes = [
        Route("/", page(flows)),
        Route("/flow/{flow}", page(runs)),
        Route("/run/{flow}/{run}", page(run)),
        Route("/task/{flow}/{run}/{step}/{task}", page(task)),
    ]

    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        message = f"There is no page at {request.url.path}: pages are /, /flow/F, /run/F/N and /task/F/N/step/T."
        return HTMLResponse(pages.error_page("not found", message), status_code=404, headers=_HEADERS)

    return Starlette(routes=routes, exception_handlers={404: not_found})


def _malformed(request: Any) -> bool:
    """Whether the URL's pathspec is malformed (a 400) rather than naming nothing (a 404)."""
    parts = [str(v) for v in request.path_params.values()]
    try:
        pathspecs.check("/".join(parts))
    except NotFound:
        return True
    return False
