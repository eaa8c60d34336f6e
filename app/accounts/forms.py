"""Forms of the sign-in boundary and the account pages."""

from wtforms import BooleanField, EmailField, HiddenField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from app.security.passwords import MAX_PASSWORD_LENGTH
from app.sessions.policy import PRESET_CUSTOM, PRESET_STANDARD, PRESET_STRICT
from app.web.forms import PageForm, no_null_bytes

PASSWORD_FIELD = [DataRequired(), Length(max=MAX_PASSWORD_LENGTH), no_null_bytes]


class LoginForm(PageForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254), no_null_bytes])
    password = PasswordField("Password", validators=PASSWORD_FIELD)
    next = HiddenField(validators=[Length(max=2048)])


class SecondStepForm(PageForm):
    """One field for an authenticator-app code or a recovery code (the service tells them apart)."""

    code = StringField("Code", validators=[DataRequired(), Length(max=64), no_null_bytes])


class ReauthenticateForm(PageForm):
    password = PasswordField("Password", validators=PASSWORD_FIELD)
    # Asked only when the account has a second factor (the service requires it then).
    code = StringField("Code from your authenticator app, or a recovery code",
                       validators=[Optional(), Length(max=64), no_null_bytes])  # fmt: skip
    next = HiddenField(validators=[Length(max=2048)])


class PasswordChangeForm(PageForm):
    current_password = PasswordField("Current password", validators=PASSWORD_FIELD)
    # Its rule (length, common and breached passwords) is the service's, the same for every way a password is set.
    new_password = PasswordField("New password", validators=PASSWORD_FIELD)
    confirm_password = PasswordField(
        "Repeat the new password", validators=[DataRequired(), EqualTo("new_password", "The two entries differ.")]
    )


class ForgotPasswordForm(PageForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254), no_null_bytes])


class ResetPasswordForm(PageForm):
    new_password = PasswordField("New password", validators=PASSWORD_FIELD)
    confirm_password = PasswordField(
        "Repeat the new password", validators=[DataRequired(), EqualTo("new_password", "The two entries differ.")]
    )
    # Asked only when the account has a second factor (the service requires it then).
    code = StringField("Code from your authenticator app, or a recovery code",
                       validators=[Optional(), Length(max=64), no_null_bytes])  # fmt: skip


def _whole_minutes(_form, field) -> None:
    raw = (field.data or "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        raise ValidationError("Enter a whole number of minutes.")


class PolicyForm(PageForm):
    """Strict / Standard / Custom; Custom's minutes are kept as typed so errors can show them again."""

    preset = RadioField(
        "Session policy",
        choices=[
            SelectChoice(PRESET_STRICT, "Strict"),
            SelectChoice(PRESET_STANDARD, "Standard"),
            SelectChoice(PRESET_CUSTOM, "Custom"),
        ],
        validators=[DataRequired()],
    )
    idle_minutes = StringField("Idle timeout (minutes)", validators=[Optional(), Length(max=9), _whole_minutes])
    absolute_minutes = StringField("Absolute timeout (minutes)", validators=[Optional(), Length(max=9), _whole_minutes])
    apply_now = BooleanField("Also apply to sessions already signed in")

    def custom_minutes(self) -> tuple[int | None, int | None]:
        return _to_int(self.idle_minutes.data), _to_int(self.absolute_minutes.data)


def _to_int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else None
