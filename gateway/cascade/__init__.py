"""The model cascade: which model a call goes to, and what happens when that model fails.

`table` resolves steps, tiers, canaries and pins (pure); `lifecycle` knows when models
retire; `retry` decides whether and when to try again (pure). The I/O that follows from
them is in gateway/cascade/dispatch.py and gateway/cascade/shadow.py.
"""
