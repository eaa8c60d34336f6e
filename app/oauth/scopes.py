"""The scopes we know, with the words the consent page uses for them."""

SCOPES = {
    "openid": "Confirm that it is you (your Gatehouse account id)",
    "profile": "Your name",
    "email": "Your email address",
}
