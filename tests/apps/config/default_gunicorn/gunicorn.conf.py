proc_name = "from-gunicorn-conf"
