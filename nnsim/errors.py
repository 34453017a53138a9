"""The one exception type for errors a user can cause (bad file, bad flag, no GPU)."""


class NnsimError(Exception):
    """An error the user can fix; its message is written for them and shown as one line."""
