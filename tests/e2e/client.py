"""A small HTTP client for the e2e tests: real sockets, cookies, CSRF, multipart uploads, no redirects followed.

The standard library only (urllib + http.cookiejar), so the tests add no
dependency.  Every request opens a new connection, so Apache hands each one to
whichever daemon process is free; ``Response.pid`` says which one answered.
"""

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import Message

from tests.utils import form_data


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")

    @property
    def pid(self):
        """The daemon process that answered (``tests.e2e.wsgi``); None for what Apache served itself."""
        value = self.headers.get("X-Console-Pid")
        return int(value) if value else None

    @property
    def location(self):
        return self.headers.get("Location", "")

    def form(self, form_id=None):
        """The fields a browser would post from this page's form."""
        fields = form_data(self.body, form_id)
        return {name: values[-1] if len(values) == 1 else values for name, values in fields.items()}

    def option(self, select_name, label):
        """The value of ``select_name``'s option labelled ``label``."""
        select = re.search(rf'<select[^>]*name="{select_name}".*?</select>', self.text, re.S)
        assert select, f"no <select name={select_name!r}> on the page"
        match = re.search(rf'<option value="([^"]*)"[^>]*>\s*{re.escape(label)}\s*</option>', select.group(0), re.I)
        assert match, f"no option {label!r} in {select_name!r}"
        return match.group(1)


class Client:
    def __init__(self, base_url, timeout=30, otp_code=None):
        """``otp_code(username)`` answers the second-factor step after a login (``Console.otp_code``)."""
        self.base_url, self.timeout, self.otp_code = base_url, timeout, otp_code
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)

    def request(self, method, path, fields=None, files=None):
        """One request; ``fields`` are form fields, ``files`` maps a field to (file name, bytes)."""
        headers, body = {}, None
        if files:
            body, content_type = _multipart(fields or {}, files)
            headers["Content-Type"] = content_type
        elif fields is not None:
            body = urllib.parse.urlencode(fields, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if method == "POST":
            headers["Referer"] = self.base_url + path
        request = urllib.request.Request(self.base_url + path, data=body, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as answer:
            with answer:
                return Response(answer.code, answer.headers, answer.read())

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, fields, files=None):
        return self.request("POST", path, fields, files)

    def submit(self, page, path, fields=None, files=None, form_id=None):
        """Post ``page``'s form (its CSRF token and defaults) to ``path``, with ``fields`` changed."""
        data = page.form(form_id)
        data.update(fields or {})
        return self.post(path, data, files)

    def preview_import(self, changelist, name, content):
        """Upload ``content`` as a CSV file called ``name`` on ``changelist``'s import form: the preview page."""
        form = self.get(changelist + "import/")
        assert form.status == 200, form.status
        fields = {"format": form.option("format", "csv")}
        return self.submit(form, changelist + "import/", fields, files={"import_file": (name, content)})

    def login(self, panel, username, password):
        """Log in on ``panel``; when the panel then asks for a code, answer it.

        Returns the login's redirect, or the code step's redirect (to ``/<panel>/``) when there was one.
        """
        page = self.get(f"/{panel}/login/")
        assert page.status == 200, page.status
        response = self.submit(
            page, f"/{panel}/login/", {"username": username, "password": password, "next": f"/{panel}/"}
        )
        if response.status != 302 or self.otp_code is None:
            return response
        step = self.get(response.location)
        if step.status != 302 or "/otp/verify/" not in step.location:
            return response
        verify_path = urllib.parse.urlsplit(step.location)
        verify_path = f"{verify_path.path}?{verify_path.query}"
        return self.submit(self.get(verify_path), verify_path, {"code": self.otp_code(username)}, form_id="otp-form")


def _multipart(fields, files):
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{item}\r\n'.encode())
    for name, (filename, content) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
