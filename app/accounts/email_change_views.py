"""Changing one's e-mail address (DESIGN §10, issue 12 item 3): asked on /account, confirmed by the new address."""

from flask import Blueprint

bp = Blueprint("email_change", __name__)
