"""Flask view returning ``jsonify(...)``: routing, a dict serialised to JSON, a JSON response."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(message="Hello, World!", items=[1, 2, 3], ok=True)
