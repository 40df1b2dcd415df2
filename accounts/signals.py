"""Domain events other apps may react to (accounts imports none of them).

`login_ended(user_type, user_id)` is sent after the commit that deleted a login by logout or ops
revoke. Availability uses it to take a mitra offline when their last login ends, so a mitra who
signs out is not offered new chats until the stale-heartbeat sweep would have noticed.
"""

from django.dispatch import Signal

login_ended = Signal()
