"""A Bottle app: ``rsgi examples.bottle_app:app`` (from the repo root).

Routes:
    GET  /hello/<name>   a greeting from the path
    POST /form           the urlencoded form fields back as JSON
    POST /upload         multipart upload (field ``file``): name, size, sha256
    GET  /cookie         sets a cookie; sends back the one it was sent
"""

import hashlib

import bottle

app = bottle.Bottle()


@app.get("/hello/<name>")
def hello(name):
    bottle.response.content_type = "text/plain; charset=utf-8"
    return "Hello, %s, from Bottle!" % name


@app.post("/form")
def form():
    return {key: bottle.request.forms.getall(key) for key in bottle.request.forms}


@app.post("/upload")
def upload():
    upload = bottle.request.files.get("file")
    if upload is None:
        bottle.abort(400, "no file field")
    data = upload.file.read()
    return {"filename": upload.raw_filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@app.get("/cookie")
def cookie():
    seen = bottle.request.get_cookie("visit", "none")
    bottle.response.set_cookie("visit", "yes", path="/")
    return {"seen": seen}
