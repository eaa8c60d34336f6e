"""Forms of the sign-in boundary."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from app.security.passwords import MAX_PASSWORD_LENGTH
from app.web.forms import no_null_bytes


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254), no_null_bytes])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH), no_null_bytes])
    next = HiddenField(validators=[Length(max=2048)])
