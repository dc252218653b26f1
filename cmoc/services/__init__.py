"""Domain services: plain functions with keyword-only arguments, no request globals."""


class ValidationError(Exception):
    """Input was rejected; `errors` maps each field to a message for the person who typed it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
