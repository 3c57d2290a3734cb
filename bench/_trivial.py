"""A trivial constant handler: the floor of the load generators (under plain uvicorn) and, mounted
with `@bentoml.asgi_app` (bench/ceiling_service.py), BentoML's own ceiling."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ANSWER = b'{"probability":0.5,"fallback":false}'


async def score(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/score", score, methods=["POST"]),
        Route("/readyz", ready),
        Route("/events", score, methods=["POST"]),
    ]
)
