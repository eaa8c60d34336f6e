"""The passkey forms of the two-step page (the ceremonies themselves post JSON)."""

from wtforms import StringField

from app.web.forms import PageForm, no_null_bytes


class RenameForm(PageForm):
    # Blank and too-long names are the service's to refuse (services.rename tidies the spaces first).
    name = StringField("Name", validators=[no_null_bytes])
