"""The owner's "Sign out everyone else" tells each device the truth: the owner's own other devices were signed out
from another device (their own), everyone else's by the account's owner."""

import pytest

from tests.factories import MEMBER_EMAIL
from tests.web.test_sign_out_reasons import KINDS, assert_told, post_form, signed_in


@pytest.mark.parametrize("kind", KINDS)
def test_the_owners_other_devices_hear_they_were_signed_out_from_another_device(app, owner, kind):
    member, phone, laptop = signed_in(app, MEMBER_EMAIL), signed_in(app), signed_in(app)
    post_form(laptop, "/account/security/revoke/others", "/account/security/revoke/others")
    assert_told(app, phone, kind, "signed_out_elsewhere")
    assert_told(app, member, kind, "signed_out_by_owner")
    assert laptop.get("/").status_code == 200
