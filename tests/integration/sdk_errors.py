"""Each documented error status and the anthropic SDK exception it must surface as."""

from __future__ import annotations

import anthropic

SDK_EXCEPTIONS: list[tuple[int, type[anthropic.APIStatusError]]] = [
    (400, anthropic.BadRequestError),
    (401, anthropic.AuthenticationError),
    (402, anthropic.PaymentRequiredError),
    (403, anthropic.PermissionDeniedError),
    (404, anthropic.NotFoundError),
    (409, anthropic.ConflictError),
    (413, anthropic.ContentTooLargeError),
    (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError),
    (504, anthropic.GatewayTimeoutError),
    (529, anthropic.OverloadedError),
]
