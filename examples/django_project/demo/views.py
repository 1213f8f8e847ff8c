"""Views that exercise the parts of WSGI Django relies on: request bodies,
query strings, streaming responses and ``wsgi.file_wrapper`` (FileResponse)."""

import json
from pathlib import Path

from django.http import (
    FileResponse,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

SAMPLE_FILE = Path(__file__).resolve().parent / "files" / "sample.txt"


@require_GET
def index(request):
    return HttpResponse(
        "<!doctype html><html><head><title>rsgi + Django</title></head>"
        "<body><h1>Hello from Django!</h1></body></html>"
    )


@csrf_exempt
@require_POST
def api_echo(request):
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        return HttpResponseBadRequest("body is not JSON")
    return JsonResponse({"received": data, "content_type": request.content_type})


@require_GET
def api_query(request):
    return JsonResponse({key: request.GET.getlist(key) for key in request.GET})


@require_GET
def stream(request):
    def lines():
        for i in range(5):
            yield f"part {i}\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


@require_GET
def file(request):
    # Django hands the open file to wsgi.file_wrapper when the server offers one.
    return FileResponse(open(SAMPLE_FILE, "rb"), content_type="text/plain")


def error(request):
    raise RuntimeError("intentional error from /error")
