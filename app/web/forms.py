"""Validators every form shares."""

from wtforms.validators import ValidationError


def no_null_bytes(_form, field) -> None:
    if field.data and "\x00" in field.data:
        raise ValidationError("This field contains characters that are not allowed.")
