"""Admission: who is calling (a gateway key, or a provider key passed through), what it may
call, whether its budgets and rate limits let this call go, and which provider key it goes
out with.

The endpoint asks in three steps (endpoint/flow.py):

1. `Gate.authenticate`, from the headers alone, before anything reads or learns from the
   body: an unknown or revoked key is refused (401) here. A key this replica has seen
   valid is taken from memory; the next step confirms it with the store.
2. `Gate.authorize`, once routing and pinning chose the models: the model that will be
   called must be one the key allows (else 403); fallbacks, hedges and shadows it does
   not allow are dropped from the call.
3. `Gate.admit`: the ledger's one round trip. It reserves the most the call can cost
   (metering/ceiling.py) against the key's budgets, refused (429) if that does not fit.

`Gate.settle` charges the real cost when the call is over, in the background. A charge
that cannot reach the store waits in a bounded backlog and is settled when it is back
(settle.py).

While the store is unreachable, a key's last known state holds (memory.py): a revoked key
stays refused, a spent budget stays spent (this replica counts what it lets through on top
of the last spend it saw), and only then does the key's on_outage policy apply.
"""

from gateway.admission.caller import Admitted, Caller, credential_of
from gateway.admission.gate import Gate
from gateway.admission.settle import Charge

__all__ = ["Admitted", "Caller", "Charge", "Gate", "credential_of"]
