"""Forms of the e-mail change: the new address on /account, and the one button of the confirmation page."""

from wtforms import EmailField
from wtforms.validators import DataRequired, Length

from app.accounts.services import MAX_EMAIL_LENGTH
from app.web.forms import PageForm, no_null_bytes


class EmailChangeForm(PageForm):
    # The address rule itself is the service's (app.accounts.services.check_email), the same for every address.
    email = EmailField("New e-mail address", validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH), no_null_bytes])


class EmailChangeConfirmForm(PageForm):
    """Only the CSRF token: the link is the authority, the button the intent (a GET never changes anything)."""
