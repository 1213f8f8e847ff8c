"""reload cannot work in rsgi: accepted with one warning line."""

reload = True
