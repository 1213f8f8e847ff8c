"""Launch bjoern, which has no command line: ``serve_bjoern.py MODULE:APP HOST PORT``."""

import importlib
import sys

import bjoern


def main():
    target, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr or "application")
    bjoern.run(app, host, port)


if __name__ == "__main__":
    main()
