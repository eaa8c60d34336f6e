"""The baseline: a bare Flask app with one route, nothing of Gatehouse in it (no hooks, no extensions).

Served by the same gunicorn settings and driven by the same load generator as Gatehouse, it is the ceiling every
figure is divided by: what Flask, the server, the load generator and this machine cost on their own.
"""

from flask import Flask

PATH = "/hello"

app = Flask(__name__)


@app.get(PATH)
def hello() -> str:
    return "hello"
