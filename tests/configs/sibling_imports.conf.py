# corpus: serve
# Values from the project's own modules: a sibling module and a package.
import corpus_settings
from corpus_pkg import DEFAULT_THREADS

workers = corpus_settings.WEB_CONCURRENCY
threads = DEFAULT_THREADS
timeout = corpus_settings.REQUEST_TIMEOUT
proc_name = corpus_settings.SERVICE_NAME
raw_env = ["DJANGO_SETTINGS_MODULE=corpus_settings", "CORPUS_FROM_RAW_ENV=yes"]
wsgi_app = "corpus_app:create_app()"
