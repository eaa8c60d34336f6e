"""The two-step verification page's one form with a field; its other actions are buttons whose forms carry only
the CSRF token (checked for every POST by CSRFProtect)."""

from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.web.forms import PageForm, no_null_bytes

# Room for "123 456" and stray spaces; the service judges the code itself (app.factors.totp.is_code_shaped).
MAX_CODE_INPUT_LENGTH = 16


class AuthenticatorCodeForm(PageForm):
    code = StringField(
        "6-digit code from the app",
        validators=[
            DataRequired("Enter the 6-digit code your authenticator app shows."),
            Length(max=MAX_CODE_INPUT_LENGTH, message="That code is not right. It has 6 digits."),
            no_null_bytes,
        ],
    )
