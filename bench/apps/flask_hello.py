"""Flask hello: the same 13-byte body as ``plain:hello``, through Flask's routing."""

from flask import Flask, Response

app = Flask(__name__)


@app.get("/")
def index():
    return Response("Hello, World!", mimetype="text/plain")
