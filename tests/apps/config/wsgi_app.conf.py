"""wsgi_app names the app when the command line gives none; the other names
here are not settings and must be ignored, as gunicorn ignores them."""

import os

wsgi_app = "cfgapp:make_app('from-wsgi-app-setting')"

not_a_setting = {"anything": 1}
SOME_CONSTANT = os.sep


def helper():
    return "not a hook"
