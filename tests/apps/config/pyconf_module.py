"""A configuration loaded as a module: -c python:pyconf_module."""

workers = 2
proc_name = "from-python-module"
