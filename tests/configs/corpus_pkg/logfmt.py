"""The project's JSON log formatter, named in ``logconfig_dict``."""

import json
import logging


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, fmt=None, datefmt=None, style="%", service="corpus"):
        super().__init__(fmt, datefmt, style)
        self.service = service

    def format(self, record):
        return json.dumps({
            "logger": record.name,
            "level": record.levelname,
            "message": record.getMessage(),
            "service": self.service,
        })
