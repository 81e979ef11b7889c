"""The REST API: ``create_api(ctx)`` in ``app``, roles and tokens in ``auth``, one router per
resource in ``routers``, the error-to-response table in ``errors``."""
