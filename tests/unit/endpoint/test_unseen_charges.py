"""What a call owes beyond its reported usage: the other attempts that may have made tokens."""

from __future__ import annotations

from gateway.endpoint.record import unseen_attempts
from gateway.wire.call import Attempt


def test_a_hedge_loser_and_a_cut_retry_are_owed_but_error_statuses_are_not() -> None:
    attempts = (
        Attempt("m", "529", 0.1),  # an error status: not billed
        Attempt("m", "cut", 0.1),  # cut after the request went: may have made tokens
        Attempt("h", "cancelled", 0.1, hedge=True, cancelled=True),  # the hedge's loser
        Attempt("m", "200", 0.1, relayed=True),  # the answer: judged by its own usage
    )
    assert unseen_attempts(attempts) == 2
    assert unseen_attempts((Attempt("m", "502", 0.1), Attempt("m", "200", 0.1, relayed=True))) == 0
