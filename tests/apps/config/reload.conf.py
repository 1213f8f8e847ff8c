"""--reload from a configuration file (turned on with one warning line)."""

reload = True
