"""What every page form shares: posted form fields only, and the validators."""

from flask import request
from flask_wtf import FlaskForm
from wtforms.validators import ValidationError


class PageForm(FlaskForm):
    """A form posted by a page. Flask-WTF would also read a JSON body into the form, and fail with a 500 on one that
    is not a flat object or is nested past the parser's recursion limit; pages post forms, the JSON API has its own
    views."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            if request.is_json:
                formdata = request.form  # empty: the fields keep their defaults and the CSRF check refuses the post
            return super().wrap_formdata(form, formdata)


def no_null_bytes(_form, field) -> None:
    if field.data and "\x00" in field.data:
        raise ValidationError("This field contains characters that are not allowed.")


def wait_words(seconds: int) -> str:
    """ "45 seconds", "2 minutes": a wait as a person reads it."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def too_many_attempts(field, retry_after_seconds: int) -> dict:
    """A refused guess is said next to its field, with the wait; the form stays (429, RFC 6585 §4). Returns the
    response's Retry-After header."""
    field.errors.append(f"Too many attempts. Try again in {wait_words(retry_after_seconds)}.")
    return {"Retry-After": str(retry_after_seconds)}
