# corpus: serve
# The Server header changed where gunicorn's response code reads it.
import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "edge"
workers = 1
