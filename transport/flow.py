"""Flow-control credit: what we may send, and what we let the peer send.

How this works
--------------
Flow control (RFC 9000 §4) is a pair of absolute byte limits, one per stream
and one for the whole connection. Both sides count offsets, never deltas, so a
lost or reordered limit update can only ever make a limit grow.

:class:`SendCredit` is the sending half. ``limit`` is the largest limit the
peer advertised (transport parameter, then MAX_DATA / MAX_STREAM_DATA), and
``used`` is how much of it we consumed: for a stream the highest offset sent,
for the connection the sum of those over all streams. ``available`` is what may
still be sent. When it reaches zero the sender reports the stall once per limit
value with DATA_BLOCKED / STREAM_DATA_BLOCKED (RFC 9000 §4.1); a repeat is
only due after the peer raised the limit and we ran dry again.

:class:`ReceiveWindow` is the receiving half. ``limit`` is the largest offset
we advertised; anything received beyond it is a FLOW_CONTROL_ERROR (§4.1).
As the application consumes data we re-advertise ``consumed + window`` once
the credit left to the peer (``limit - consumed``) drops below half the
window, so updates are batched rather than sent per read (§4.2). The window
auto-tunes: when the previous update went out less than two round trips ago,
the reader is keeping up with a window that is too small to cover the
bandwidth-delay product, so the window doubles, up to ``max_window_bytes``
(the scheme quinn and Chromium use). That rule cannot see a window that is
too small because of *loss*: data above a hole waits for the repair (one or
more round trips) and holds the window meanwhile, while updates still come
every few round trips. So the window also doubles when the peer used all
the credit before the update (it was blocked), and when the peer reports
that our current limit blocks it (DATA_BLOCKED / STREAM_DATA_BLOCKED at that
limit, :meth:`ReceiveWindow.on_peer_blocked`; the larger limit then goes out
at once, during the stall). Memory stays bounded by the window,
because a peer may never have more than ``window`` unread bytes outstanding.

Both classes serve either level: the connection holds one of each for itself
and the stream objects in :mod:`transport.streams` use them per stream.
"""

from __future__ import annotations

from transport.errors import ConfigurationError, InvalidStateError, RemoteProtocolError
from transport.wire.constants import ErrorCode

__all__ = ["ReceiveWindow", "SendCredit"]

_FLOW_CONTROL_ERROR = int(ErrorCode.FLOW_CONTROL_ERROR)


class SendCredit:
    """Credit the peer granted us (one stream, or the connection).

    ``limit`` and ``used`` are absolute byte counts; ``available = limit - used``.
    """

    __slots__ = ("_blocked_limit", "_limit", "_used")

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 0:
            raise ConfigurationError(f"limit_bytes must be >= 0, not {limit_bytes}")
        self._limit = limit_bytes
        self._used = 0
        self._blocked_limit = -1  # the limit value we last reported as blocking

    @property
    def limit(self) -> int:
        """The largest limit the peer advertised, in bytes."""
        return self._limit

    @property
    def used(self) -> int:
        """Bytes consumed against the limit."""
        return self._used

    @property
    def available(self) -> int:
        """Bytes that may still be sent (never negative)."""
        return self._limit - self._used

    def consume(self, n_bytes: int) -> None:
        """Charge ``n_bytes`` of new data. Raises InvalidStateError beyond the limit."""
        used = self._used + n_bytes
        if n_bytes < 0 or used > self._limit:
            raise InvalidStateError(
                f"cannot consume {n_bytes} bytes: {self._limit - self._used} available"
            )
        self._used = used

    def raise_limit(self, new_limit_bytes: int) -> bool:
        """Apply a limit update from the peer. Decreases (stale or reordered
        updates) are ignored; returns True when the limit grew."""
        if new_limit_bytes > self._limit:
            self._limit = new_limit_bytes
            return True
        return False

    def should_send_blocked(self) -> bool:
        """True when credit is exhausted and the stall at this limit has not been
        reported yet; the caller then sends one DATA_BLOCKED/STREAM_DATA_BLOCKED
        carrying :attr:`limit`. Returns True at most once per limit value."""
        if self._used >= self._limit and self._blocked_limit != self._limit:
            self._blocked_limit = self._limit
            return True
        return False

    def __repr__(self) -> str:
        return f"SendCredit(limit={self._limit}, used={self._used})"


class ReceiveWindow:
    """Credit we grant the peer (one stream, or the connection), with auto-tuning."""

    __slots__ = (
        "_consumed",
        "_last_update_time",
        "_limit",
        "_max_window",
        "_received",
        "_window",
    )

    def __init__(self, initial_window_bytes: int, max_window_bytes: int) -> None:
        if initial_window_bytes <= 0:
            raise ConfigurationError(
                f"initial_window_bytes must be > 0, not {initial_window_bytes}"
            )
        if max_window_bytes < initial_window_bytes:
            raise ConfigurationError(
                f"max_window_bytes ({max_window_bytes}) must be >= "
                f"initial_window_bytes ({initial_window_bytes})"
            )
        self._window = initial_window_bytes
        self._max_window = max_window_bytes
        self._limit = initial_window_bytes
        self._received = 0
        self._consumed = 0
        self._last_update_time: float | None = None

    @property
    def limit(self) -> int:
        """The largest offset we advertised (initial window, then MAX_*DATA)."""
        return self._limit

    @property
    def window_bytes(self) -> int:
        """The current window: how far beyond the consumed offset we advertise."""
        return self._window

    @property
    def max_window_bytes(self) -> int:
        return self._max_window

    @property
    def received(self) -> int:
        """The highest offset received so far (bytes charged against the limit)."""
        return self._received

    @property
    def consumed(self) -> int:
        """Bytes the application consumed (read, or released by a reset)."""
        return self._consumed

    def on_received(self, highest_offset: int) -> None:
        """Record the peer's highest offset (for the connection: the sum over
        streams). Raises RemoteProtocolError(FLOW_CONTROL_ERROR) beyond
        :attr:`limit`."""
        if highest_offset > self._received:
            if highest_offset > self._limit:
                raise RemoteProtocolError(
                    _FLOW_CONTROL_ERROR,
                    f"peer sent up to offset {highest_offset}, limit is {self._limit}",
                )
            self._received = highest_offset

    def add_received(self, n_bytes: int) -> None:
        """Charge ``n_bytes`` more (an increase of some stream's highest offset)
        against the limit; same check as :meth:`on_received`."""
        if n_bytes > 0:
            self.on_received(self._received + n_bytes)

    def on_consumed(self, n_bytes: int, now: float, rtt_s: float) -> int | None:
        """Record ``n_bytes`` consumed by the application at time ``now``.

        Returns the new limit to advertise (MAX_DATA / MAX_STREAM_DATA) when the
        credit left to the peer fell below half the window, else None. If the
        previous update was sent less than ``2 * rtt_s`` ago, or the peer has
        received up to the current limit (it ran out of credit), the window
        doubles first (capped at ``max_window_bytes``). ``rtt_s`` <= 0 (no RTT
        sample yet) disables the time rule.
        """
        consumed = self._consumed + n_bytes
        if n_bytes < 0 or consumed > self._received:
            raise InvalidStateError(
                f"cannot consume {n_bytes} bytes: only {self._received - self._consumed} "
                "received and unconsumed"
            )
        self._consumed = consumed
        window = self._window
        if (self._limit - consumed) * 2 >= window:
            return None
        last = self._last_update_time
        if window < self._max_window and (
            # the peer used all the credit: it was blocked, the window is short
            self._received >= self._limit
            or (last is not None and rtt_s > 0.0 and now - last < 2.0 * rtt_s)
        ):
            window = min(window * 2, self._max_window)
            self._window = window
        self._last_update_time = now
        self._limit = consumed + window
        return self._limit

    def on_peer_blocked(self, limit_bytes: int) -> int | None:
        """The peer reports that it is blocked at ``limit_bytes``. When that is
        our current limit and the window may grow, the window doubles (capped at
        ``max_window_bytes``) and the new limit to advertise is returned; else
        None (a stale report, or the window is at its maximum)."""
        if limit_bytes != self._limit or self._window >= self._max_window:
            return None
        window = min(self._window * 2, self._max_window)
        self._window = window
        new_limit = self._consumed + window
        if new_limit <= self._limit:
            return None
        self._limit = new_limit
        return new_limit

    def __repr__(self) -> str:
        return (
            f"ReceiveWindow(limit={self._limit}, window={self._window}, "
            f"received={self._received}, consumed={self._consumed})"
        )
