"""What sessions announce to the rest of the app, as Flask's own signals are (a blinker Namespace): listeners
subscribe in the app factory, so sessions never import them (DESIGN §1)."""

from blinker import Namespace

_signals = Namespace()

# Sent by the app (sender) with session_ids, reason and now, inside the transaction that ended those sessions:
# whatever a receiver writes commits or rolls back with the sign-out itself.
session_ended = _signals.signal("session-ended")
