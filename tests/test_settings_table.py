"""Every setting of the installed gunicorn is in rsgi's settings table, with
the same command-line flags; a new gunicorn setting fails this test until
rsgi handles it."""

import pytest

gunicorn_config = pytest.importorskip("gunicorn.config")
from rsgi._rsgi import settings_table  # noqa: E402


def _rsgi_table():
    return {name: (flags, support, own) for name, flags, support, own in settings_table()}


def test_every_gunicorn_setting_is_known():
    table = _rsgi_table()
    missing = [s.name for s in gunicorn_config.KNOWN_SETTINGS if s.name not in table]
    assert not missing, "gunicorn settings unknown to rsgi: %s" % missing


def test_flags_match_gunicorn():
    table = _rsgi_table()
    for s in gunicorn_config.KNOWN_SETTINGS:
        flags = table[s.name][0]
        for flag in s.cli or []:
            assert flag in flags, "%s: gunicorn flag %s missing in rsgi" % (s.name, flag)


def test_every_setting_says_what_rsgi_does():
    for name, (flags, support, own) in _rsgi_table().items():
        assert support == "full" or support.split(": ", 1)[0] in ("ignored", "refused"), name
        if support != "full":
            assert len(support.split(": ", 1)[1]) > 10, "%s needs a reason" % name


def test_rsgi_only_settings_are_not_gunicorns():
    names = {s.name for s in gunicorn_config.KNOWN_SETTINGS}
    for name, (_, _, own) in _rsgi_table().items():
        assert own == (name not in names), name
