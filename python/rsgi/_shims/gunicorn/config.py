"""``gunicorn.config.Config`` as custom applications use it: every setting
name in ``settings`` (each with a ``value``), ``set(name, value)``, and the
values as attributes. What was set is what ``BaseApplication.run()`` hands
to ``rsgi.run``.
"""

from rsgi._rsgi import settings_table


class Setting:
    """One setting: its name and the value set (None when not set)."""

    def __init__(self, name):
        self.name = name
        self.value = None

    def get(self):
        return self.value

    def set(self, value):
        self.value = value


class Config:
    def __init__(self, usage=None, prog=None):
        self.__dict__["usage"] = usage
        self.__dict__["prog"] = prog
        self.__dict__["settings"] = {name: Setting(name) for name, *_ in settings_table()}
        self.__dict__["given"] = {}

    def set(self, name, value):
        if name not in self.settings:
            raise AttributeError("no setting named %r" % name)
        self.settings[name].set(value)
        self.given[name] = value

    def __getattr__(self, name):
        settings = self.__dict__["settings"]
        if name not in settings:
            raise AttributeError("no setting named %r" % name)
        return settings[name].get()

    def __setattr__(self, name, value):
        if name in self.settings:
            raise AttributeError("settings change through cfg.set(), not attributes")
        super().__setattr__(name, value)
