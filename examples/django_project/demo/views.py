"""Views that exercise the parts of WSGI Django relies on: request bodies,
query strings, streaming responses, ``wsgi.file_wrapper`` (FileResponse), a
form POST protected by CSRF, and a multipart file upload."""

import hashlib
import json
from pathlib import Path

from django.http import (
    FileResponse,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
    StreamingHttpResponse,
)
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .forms import ContactForm, UploadForm

SAMPLE_FILE = Path(__file__).resolve().parent / "files" / "sample.txt"


@require_GET
def index(request):
    return HttpResponse(
        "<!doctype html><html><head><title>rsgi + Django</title></head>"
        "<body><h1>Hello from Django!</h1></body></html>"
    )


@require_GET
def styled(request):
    """A page whose stylesheet comes from STATIC_ROOT (after collectstatic),
    by its hashed name."""
    return HttpResponse(
        '<!doctype html><html><head><title>rsgi + Django</title>'
        '<link rel="stylesheet" href="%s"></head>'
        "<body><h1>Hello from Django, with style!</h1></body></html>" % escape(static("demo/site.css"))
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


def _page(title, body):
    return HttpResponse(
        "<!doctype html><html><head><title>%s</title></head><body>%s</body></html>"
        % (escape(title), body)
    )


def _form_page(request, title, form, action, multipart=False):
    # No template engine in this project: the form renders itself, and the
    # CSRF token goes in the hidden field Django's middleware checks.
    enctype = ' enctype="multipart/form-data"' if multipart else ""
    return _page(
        title,
        '<form method="post" action="%s"%s>'
        '<input type="hidden" name="csrfmiddlewaretoken" value="%s">%s'
        '<button type="submit">Send</button></form>'
        % (action, enctype, escape(get_token(request)), form.as_div()),
    )


@require_http_methods(["GET", "POST"])
def contact(request):
    """A form POST guarded by CsrfViewMiddleware (no csrf_exempt here)."""
    if request.method == "POST":
        form = ContactForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            return _page("Thanks", "<p>Thanks, %s: %d characters received.</p>"
                         % (escape(data["name"]), len(data["message"])))
        response = _form_page(request, "Contact", form, "/contact")
        response.status_code = 400
        return response
    return _form_page(request, "Contact", ContactForm(), "/contact")


@require_http_methods(["GET", "POST"])
def upload(request):
    """A multipart upload, CSRF-protected; large files spool to disk."""
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors}, status=400)
        uploaded = form.cleaned_data["file"]
        digest = hashlib.sha256()
        for chunk in uploaded.chunks():
            digest.update(chunk)
        return JsonResponse({
            "name": uploaded.name,
            "size": uploaded.size,
            "sha256": digest.hexdigest(),
            "description": form.cleaned_data["description"],
        })
    return _form_page(request, "Upload", UploadForm(), "/upload", multipart=True)
