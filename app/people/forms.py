"""Forms of the people page and of an invitation's link."""

from wtforms import EmailField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from app.accounts.forms import PASSWORD_FIELD
from app.accounts.models import ROLE_MEMBER, ROLE_OWNER
from app.accounts.services import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH
from app.web.forms import PageForm, no_null_bytes

ROLE_CHOICES = [SelectChoice(ROLE_MEMBER, "Member"), SelectChoice(ROLE_OWNER, "Owner")]


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class InviteForm(PageForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH), no_null_bytes],
                       filters=[_strip])  # fmt: skip
    # Checked by the service (whatever was posted); the choices only render the radios.
    role = RadioField("Role", choices=ROLE_CHOICES, default=ROLE_MEMBER, validate_choice=False,
                      validators=[DataRequired("Choose a role.")])  # fmt: skip


class AcceptInvitationForm(PageForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=MAX_NAME_LENGTH), no_null_bytes],
                       filters=[_strip])  # fmt: skip
    # Its rule (length, common and breached passwords) is the service's, the same for every way a password is set.
    new_password = PasswordField("Choose a password", validators=PASSWORD_FIELD)
    confirm_password = PasswordField(
        "Repeat the password", validators=[DataRequired(), EqualTo("new_password", "The two entries differ.")]
    )
