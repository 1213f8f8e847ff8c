# corpus: serve
# Behind nginx over a unix socket, with a permissive umask for the socket.
import os

socket_path = os.environ.get("CORPUS_SOCK", "/run/app/app.sock")
bind = "unix:" + socket_path
umask = 0o007
workers = 2
proc_name = "corpus-unix"
