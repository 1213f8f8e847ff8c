"""A Falcon app: ``rsgi examples.falcon_app:app`` (from the repo root).

Routes:
    GET  /              plain-text greeting
    GET  /items/{id}    a JSON document built from the path parameter
    POST /items         stores nothing, answers 201 with the JSON it was sent
    GET  /stream        a streamed response (a generator as the body stream)
"""

import falcon


class Index:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "Hello from Falcon!"


class Item:
    def on_get(self, req, resp, item_id):
        resp.media = {"id": item_id, "query": dict(req.params)}


class Items:
    def on_post(self, req, resp):
        doc = req.get_media()
        if not isinstance(doc, dict) or "name" not in doc:
            raise falcon.HTTPBadRequest(title="a JSON object with a name is required")
        resp.status = falcon.HTTP_201
        resp.location = "/items/1"
        resp.media = {"created": doc}


class Stream:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = (("row %d\n" % i).encode() for i in range(20))


app = falcon.App()
app.add_route("/", Index())
app.add_route("/items/{item_id:int}", Item())
app.add_route("/items", Items())
app.add_route("/stream", Stream())
