"""What happens when a case is verified, per purpose. Higher apps register their
handler in AppConfig.ready(), so verification never imports them."""

from collections.abc import Callable

from verification.models import VerificationCase

VerifiedHandler = Callable[[VerificationCase], None]
_handlers: dict[str, VerifiedHandler] = {}


def register_verified_handler(purpose: str, handler: VerifiedHandler) -> None:
    _handlers[purpose] = handler


def notify_verified(case: VerificationCase) -> None:
    handler = _handlers.get(case.purpose)
    if handler is not None:
        handler(case)
