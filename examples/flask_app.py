"""A small but real Flask app: ``rsgi examples.flask_app:app`` (from the repo root).

Routes:
    GET  /         plain-text greeting
    GET  /json     a JSON document (jsonify)
    POST /echo     echoes a form or JSON body back as JSON
    POST /upload   multipart upload (field ``file``): size and sha256
    GET  /stream   a streamed response produced by a generator
    GET  /headers  the request headers as JSON
    GET  /error    raises, so the server answers 500
"""

import hashlib

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return Response("Hello from Flask!", mimetype="text/plain")


@app.get("/json")
def json_doc():
    return jsonify(message="hello", numbers=[1, 2, 3], nested={"ok": True})


@app.post("/echo")
def echo():
    if request.is_json:
        return jsonify(kind="json", data=request.get_json())
    return jsonify(kind="form", data=request.form.to_dict(flat=False))


@app.post("/upload")
def upload():
    uploaded = request.files.get("file")
    if uploaded is None:
        return jsonify(error="no file field"), 400
    digest = hashlib.sha256()
    size = 0
    while True:
        chunk = uploaded.stream.read(64 * 1024)
        if not chunk:
            break
        size += len(chunk)
        digest.update(chunk)
    return jsonify(filename=uploaded.filename, size=size, sha256=digest.hexdigest())


@app.get("/stream")
def stream():
    def generate():
        for i in range(10):
            yield f"chunk {i}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/headers")
def headers():
    return jsonify(dict(request.headers))


@app.get("/error")
def error():
    raise RuntimeError("intentional error from /error")
