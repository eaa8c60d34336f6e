"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) on Authlib's EndSessionEndpoint: sign out and go
back only when everything checks out; anything less asks the user first (catalogue #22)."""

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from flask import g

from app.accounts.services import sign_out
from app.clock import now
from app.oauth import claims, keys
from app.web.auth import client_ip, forget_session

NOT_THE_AUDIENCE = "The application that asked to sign you out is not the one this sign-in was issued to."


class EndSession(EndSessionEndpoint):
    def _validate_id_token_hint(self, id_token_hint: str) -> dict | None:
        """Hook replaced, the narrowest point there is (Authlib's raises on a bad hint): the hint must be an ID token
        of ours (keys.verify: our rotating keys, RS256, typ, iss), expired is fine (§2: "even when the exp time has
        passed"); a missing, altered or foreign one counts as no hint, so the user is asked instead of refused."""
        try:
            return keys.verify(id_token_hint, claims.ID_TOKEN_TYP, now(), allow_expired=True)
        except keys.InvalidJWT:
            return None

    def validate_request(self, request) -> EndSessionRequest:
        """Authlib's checks (registered post_logout_redirect_uri, exact; state; client_id the hint's audience), then
        ours: a hint naming someone else than the user signed in here gets no redirect (the user is asked)."""
        try:
            end_session_request = super().validate_request(request)
        except InvalidRequestError as exc:
            # The one refusal left once our hint check never raises: §2's MUST, client_id not the hint's audience.
            raise InvalidRequestError(NOT_THE_AUDIENCE) from exc
        hinted, session = end_session_request.id_token_claims, g.current_session
        if hinted and session is not None and hinted.get("sub") != claims.subject(session.user_id):
            end_session_request.redirect_uri = None
        return end_session_request

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        """Hook: reached only with a valid hint and a registered URI (the view asks otherwise); the view commits."""
        if g.current_session is not None:
            sign_out(g.current_session.id, now(), ip=client_ip())
            forget_session()
