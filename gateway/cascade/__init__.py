"""The model cascade: which model a call goes to, and what happens when that model fails.

`table` resolves steps, tiers, canaries and pins (pure); `lifecycle` knows when models
retire; `retry` decides whether and when to try again (pure). The I/O that follows from
them: `dispatch` starts a call (a `chain` of attempts per model list, a `hedge` race
between two), `shadow` sends sampled copies.
"""
