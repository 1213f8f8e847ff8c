"""A Pyramid app: ``rsgi examples.pyramid_app:app`` (from the repo root).

Routes:
    GET  /              plain-text greeting
    GET  /users/{name}  a JSON view (renderer="json") using the route match
    POST /echo          the JSON request body back, with its length
    GET  /redirect      a 302 to /
"""

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response


def index(request):
    return Response("Hello from Pyramid!", content_type="text/plain")


def user(request):
    return {"name": request.matchdict["name"], "script_name": request.script_name}


def echo(request):
    return {"received": request.json_body, "length": request.content_length}


def redirect(request):
    return HTTPFound(location=request.route_url("index"))


def make_app():
    with Configurator() as config:
        config.add_route("index", "/")
        config.add_view(index, route_name="index")
        config.add_route("user", "/users/{name}")
        config.add_view(user, route_name="user", renderer="json")
        config.add_route("echo", "/echo")
        config.add_view(echo, route_name="echo", request_method="POST", renderer="json")
        config.add_route("redirect", "/redirect")
        config.add_view(redirect, route_name="redirect")
        return config.make_wsgi_app()


app = make_app()
