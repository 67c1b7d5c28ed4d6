"""Explicit Congestion Notification: marking, validation and CE response
(RFC 9000 §13.4, RFC 9002 §7.1).

How this works
--------------
Codepoints are the two ECN bits of the IP header (RFC 3168): ``NOT_ECT`` 0,
``ECT1`` 1, ``ECT0`` 2, ``CE`` 3. The sans-IO core only says which codepoint
to put on the datagrams it returns (:attr:`EcnSender.codepoint`, exposed as
``Connection.ecn_codepoint``) and takes the codepoint a datagram arrived with
as an argument (``receive_datagram(..., ecn=...)``); drivers and the
simulator move the bits.

*Receiver* (:class:`transport.ack.AckManager`): each packet that is processed
(not a duplicate, authenticated) adds one to the count of its codepoint; the
ACK frames then carry the ECT(0) / ECT(1) / CE totals as ACK_ECN (one packet
number space here, so one set of counts). A CE-marked packet is acknowledged
at once (RFC 9000 §13.2.1).

*Sender* (:class:`EcnSender`): every packet is marked ECT(0) from the first
one (packet number ``first_marked_pn``) while the state is ``testing`` or
``capable``; once validation fails marking stops for good on this path, at
packet number ``stop_pn``. So "was packet ``pn`` marked" is
``first_marked_pn <= pn < stop_pn`` and no per-packet state is needed.
Each ACK frame that advances the largest acknowledged packet number is
validated (§13.4.2.1; out-of-order ACKs are not, as the RFC advises):

* it newly acknowledges marked packets but carries no ECN counts (a peer
  that does not echo, or a plain ACK): **fail**;
* a count decreased, ECT(1) is non-zero (we never send it), or ECT(0) + CE
  exceed the packets we marked: **fail**;
* the ECT(0) + CE increase is smaller than the number of newly acknowledged
  marked packets (a path that clears the bits -- *bleaching* -- or remarks
  them): **fail**;
* otherwise the path is ``capable``, and the CE increase is returned: the
  connection hands each newly CE-marked packet to the congestion controller
  (``on_ecn_ce``), which treats it like a loss -- NewReno and CUBIC reduce at
  most once per round trip (their recovery period), BBR counts it as lost in
  its round's loss rate.

While ``testing`` (before any ACK validated), ``TESTING_PTO_LIMIT``
consecutive probe timeouts also fail validation, so a path that drops
ECT-marked packets (RFC 9000 §13.4.2: "if all packets marked ... are lost")
falls back to unmarked packets. A move to a new peer address restarts testing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recovery import SentPacket

__all__ = ["CE", "ECT0", "ECT1", "NOT_ECT", "EcnSender"]

NOT_ECT = 0
ECT1 = 1
ECT0 = 2
CE = 3

#: Consecutive PTOs while testing after which marking is assumed to be the problem.
TESTING_PTO_LIMIT = 3
#: At most this many ``on_ecn_ce`` calls per ACK frame (one per newly marked packet).
MAX_CE_SIGNALS_PER_ACK = 64

_NO_STOP = 1 << 62
_packet_number_of = attrgetter("packet_number")


class EcnSender:
    """Sender-side ECN state of one path: ``testing`` -> ``capable`` or ``failed``."""

    __slots__ = (
        "ce_count",
        "ect0_count",
        "ect1_count",
        "failure",
        "first_marked_pn",
        "marked_before",
        "state",
        "stop_pn",
    )

    def __init__(self, enabled: bool = True, first_pn: int = 0) -> None:
        self.state = "testing" if enabled else "failed"
        #: why validation failed ("" while it has not)
        self.failure = "" if enabled else "disabled"
        self.first_marked_pn = first_pn
        self.stop_pn = _NO_STOP if enabled else first_pn
        #: packets marked on earlier paths (the peer's counts are cumulative)
        self.marked_before = 0
        # the peer's counts as of the last validated ACK
        self.ect0_count = 0
        self.ect1_count = 0
        self.ce_count = 0

    @property
    def codepoint(self) -> int:
        """Codepoint for the datagrams sent now: ECT(0), or Not-ECT once failed."""
        return NOT_ECT if self.state == "failed" else ECT0

    def restart(self, next_pn: int) -> None:
        """A new path: validate again from packet ``next_pn`` on."""
        if self.failure == "disabled":
            return
        self.marked_before += min(self.stop_pn, next_pn) - self.first_marked_pn
        self.state = "testing"
        self.failure = ""
        self.first_marked_pn = next_pn
        self.stop_pn = _NO_STOP

    def fail(self, reason: str, next_pn: int) -> None:
        """Stop marking from packet ``next_pn`` on."""
        if self.state != "failed":
            self.state = "failed"
            self.failure = reason
            self.stop_pn = next_pn

    def on_pto(self, pto_count: int, next_pn: int) -> None:
        if self.state == "testing" and pto_count >= TESTING_PTO_LIMIT:
            self.fail("marked packets lost", next_pn)

    def on_ack(
        self,
        acked: Sequence[SentPacket],
        counts: Sequence[int] | None,
        largest_advanced: bool,
        next_pn: int,
    ) -> int:
        """Validate one ACK frame (``acked``: its newly acknowledged packets,
        ascending by number, as recovery returns them); returns how many packets
        it newly reports CE."""
        if self.state == "failed":
            return 0
        first, stop = self.first_marked_pn, self.stop_pn
        # acked ascends by packet number: the marked ones are one slice of it
        newly_marked = len(acked)
        if newly_marked and (acked[0].packet_number < first
                             or acked[-1].packet_number >= stop):
            newly_marked = bisect_left(acked, stop, key=_packet_number_of) - bisect_left(
                acked, first, key=_packet_number_of)
            if newly_marked < 0:
                newly_marked = 0
        if counts is None:
            if newly_marked:
                self.fail("ACK without ECN counts", next_pn)
            return 0
        if not largest_advanced:
            return 0
        ect0, ect1, ce = counts[0], counts[1], counts[2]
        d_ect0 = ect0 - self.ect0_count
        d_ce = ce - self.ce_count
        if d_ect0 < 0 or ect1 < self.ect1_count or d_ce < 0:
            self.fail("ECN counts decreased", next_pn)
            return 0
        if ect1 or ect0 + ce > self.marked_before + min(stop, next_pn) - first:
            self.fail("more ECN-marked packets counted than sent", next_pn)
            return 0
        if d_ect0 + d_ce < newly_marked:
            self.fail("ECT(0) marks lost on the path", next_pn)
            return 0
        self.ect0_count, self.ect1_count, self.ce_count = ect0, ect1, ce
        if newly_marked:
            self.state = "capable"
        return d_ce
