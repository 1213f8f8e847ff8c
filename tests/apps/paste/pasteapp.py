"""A PasteDeploy app factory for the --paste tests."""


def make_app(global_conf, **local_conf):
    text = "%s/%s" % (local_conf.get("greeting", "-"), global_conf.get("extra", "-"))

    def app(environ, start_response):
        body = text.encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app
