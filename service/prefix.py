"""`url_prefix`: every route under one path, as LibreTranslate's --url-prefix (`/translator/translate`).

A pure ASGI middleware, outermost: a request under the prefix goes on with the prefix as its
`root_path` (ASGI's place for it: routes match the rest of the path, and the URLs the service writes,
such as `translatedFileUrl`, keep the prefix); the prefix alone is redirected to the page at
`prefix/`; anything else is a JSON 404 naming the prefix. The web page calls the service by relative
URLs, so it works under any prefix.
"""

from __future__ import annotations

from fastapi.responses import RedirectResponse

from carousel.service.errors import error_response


class UrlPrefix:
    def __init__(self, app, prefix: str):
        self.app = app
        self.prefix = prefix  # "/translator": one leading slash, none at the end (ServiceSettings checks it)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == self.prefix:
            await RedirectResponse(self.prefix + "/", status_code=308)(scope, receive, send)
        elif path.startswith(self.prefix + "/"):
            await self.app({**scope, "root_path": scope.get("root_path", "") + self.prefix}, receive, send)
        else:
            await error_response(404, f"not found: this server answers under {self.prefix}/")(scope, receive, send)
