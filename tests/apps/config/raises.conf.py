"""A configuration file that raises while it is executed."""

workers = 2
raise RuntimeError("config exploded on purpose")
