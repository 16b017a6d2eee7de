"""The child's turn rules: who speaks when, as a small state machine (see :mod:`gust.protocol`)."""

from __future__ import annotations

from gust.protocol._codec import LocalProtocolError, RemoteProtocolError
from gust.protocol._messages import CALL, ERROR, RESULT, START

TYPE_CHECKING = False  # typing is not imported at run time: every task start pays for imports
if TYPE_CHECKING:
    from typing import Final

#: Codes of the errors :class:`ChildState` raises for a message out of turn: ``out_of_order``
#: (we were about to send it: a local error) and ``unexpected_reply`` (the host sent it).
STATE_ERROR_CODES: Final = ("out_of_order", "unexpected_reply")


# -- the child's turn rules -------------------------------------------------------------------


class ChildState:
    """The child's side of who speaks when, with no I/O: feed it what is sent and received.

    ``start`` first; then ``log`` and ``call`` in any number; at most one ``error``; exactly
    one final ``result``, after which nothing. Calls are answered in order, one reply each;
    the caller says which call it waits for (the latest one sent), so the late reply of a call
    its caller gave up on (a timeout, an exception) is recognised and skipped, and a reply
    beyond the calls sent is refused.

    Args:
        started: begin after ``start`` (a conversation that has no ``start`` frame, such as
            ``gust run done`` or an in-memory host).
    """

    __slots__ = ("calls_sent", "failed", "finished", "replies_taken", "started", "waiting")

    def __init__(self, *, started: bool = False) -> None:
        self.started = started
        self.failed = False
        self.finished = False
        self.calls_sent = 0
        self.replies_taken = 0
        #: The number of the call whose caller waits for its reply (1-based), or 0.
        self.waiting = 0

    def send(self, kind: str) -> None:
        """Account for a frame of type ``kind`` about to be sent.

        Raises:
            LocalProtocolError: ``out_of_order``: nothing after the ``result``, nothing before
                ``start``, one ``start`` and one ``error`` at most.
        """
        if self.finished:
            raise LocalProtocolError(
                "out_of_order", f"a {kind} frame cannot follow the final result"
            )
        if kind == START:
            if self.started:
                raise LocalProtocolError("out_of_order", "start was already sent")
            self.started = True
            return
        if not self.started:
            raise LocalProtocolError("out_of_order", f"a {kind} frame cannot come before start")
        if kind == CALL:
            self.calls_sent += 1
            self.waiting = self.calls_sent
        elif kind == ERROR:
            if self.failed:
                raise LocalProtocolError("out_of_order", "an error frame was already sent")
            self.failed = True
        elif kind == RESULT:
            self.finished = True

    @property
    def replies_owed(self) -> int:
        """Replies the host still owes (to the waiting call and to calls given up on)."""
        return self.calls_sent - self.replies_taken

    def receive_reply(self) -> bool:
        """Account for one reply received.

        Returns:
            ``True`` when it answers the call now waiting, ``False`` when it is the late reply
            to an earlier call whose caller gave up (to be skipped).

        Raises:
            RemoteProtocolError: ``unexpected_reply``: the host sent more replies than calls.
        """
        number = self.replies_taken + 1
        if number > self.calls_sent:
            raise RemoteProtocolError(
                "unexpected_reply",
                f"the host sent reply #{number} but only {self.calls_sent} call(s) were made "
                "(a reply when no call was waiting, or a second reply to one call)",
            )
        self.replies_taken = number
        if number == self.waiting:
            self.waiting = 0
            return True
        return False
