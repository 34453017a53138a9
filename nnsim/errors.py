"""The one exception type for errors a user can cause (bad file, bad flag, no GPU)."""


class NnsimError(Exception):
    """An error the user can fix; its message is written for them and shown as one line."""


class SettingError(NnsimError):
    """A setting out of range (a learning rate of inf, a seed of −1): `name` is the setting's field,
    so that the lab can show the message beside the box the value came from."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name
