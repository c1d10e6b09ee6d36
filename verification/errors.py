"""Domain errors of verification. Each carries the HTTP status the API answers with,
so views map them in one place and never repeat a rule."""


class VerificationError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class BadRequest(VerificationError):
    status, code = 400, "invalid"


class NotAllowed(VerificationError):
    status, code = 403, "permission_denied"


class WrongState(VerificationError):
    status, code = 409, "conflict"


class Throttled(VerificationError):
    status, code = 429, "throttled"
