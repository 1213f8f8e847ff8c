"""The demo's forms: a contact form and a file upload, both posted with the
CSRF token the page embeds."""

from django import forms


class ContactForm(forms.Form):
    name = forms.CharField(max_length=100)
    email = forms.EmailField()
    message = forms.CharField(widget=forms.Textarea, max_length=10_000)


class UploadForm(forms.Form):
    description = forms.CharField(max_length=200, required=False)
    file = forms.FileField()
