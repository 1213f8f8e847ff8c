"""gunicorn's exception names, for code that catches or raises them."""


class HaltServer(BaseException):
    def __init__(self, reason, exit_status=1):
        super().__init__(reason)
        self.reason = reason
        self.exit_status = exit_status


class ConfigError(Exception):
    """A bad configuration value."""


class AppImportError(Exception):
    """The application could not be imported."""
