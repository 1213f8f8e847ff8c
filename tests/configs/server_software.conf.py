# corpus: serve
# Hide the server's name and version from responses.
import gunicorn

gunicorn.SERVER_SOFTWARE = "undisclosed"
workers = 1
