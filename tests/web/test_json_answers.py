"""json_answer (the grant check's and the status poll's answers) gives the bytes and type jsonify would."""

from flask import jsonify

from app.web.json_answers import json_answer


def test_the_same_bytes_as_jsonify(app):
    body = {"active": True, "sub": "é ünïcode", "client_id": "gh_x", "device_id": None, "expires_at": "2026-01-05"}
    with app.test_request_context("/"):
        ours, flasks = json_answer(body, 201, {"Cache-Control": "no-store"}), jsonify(body)
        assert ours.get_data() == flasks.get_data()
        assert ours.mimetype == flasks.mimetype == "application/json"
        assert (ours.status_code, ours.headers["Cache-Control"]) == (201, "no-store")
