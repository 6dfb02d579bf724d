"""A cut-off download must look cut off: the body's HTTP/1.1 chunks, framed by the console behind mod_wsgi's daemons.

An export that fails mid-stream raises out of the response iterator.  Served
in-process (mod_wsgi embedded mode, the test client) that is enough: the
server never writes the closing zero-length chunk.  Under mod_wsgi's daemon
mode (production, ``make run``, the e2e server) it is not: the Apache child
relays the daemon's bytes and, when the daemon's socket closes (after an
error, or because the process was killed), ends the chunked body cleanly, so a
partial file reads as complete (mod_wsgi 6.1).  Apache passes on a response
that declares its own ``Transfer-Encoding`` without chunking it again, so
behind a daemon the export frames its chunks itself and only an export that
reached its end writes the last chunk.  ``Connection: close`` makes Apache
close the connection at once instead of holding it for keep-alive, where the
client would wait for the missing chunk.

Apache must not compress these responses (a ``DEFLATE`` filter would squeeze
the framing into the gzip stream): Debian's ``deflate.conf`` covers none of
the export types (CSV, TSV, JSON, XLSX).
"""

#: The last chunk of a chunked body: only a finished export writes it.
LAST_CHUNK = b"0\r\n\r\n"


def behind_mod_wsgi_daemon(request):
    """Whether mod_wsgi relays this response from a daemon process over HTTP/1.1 (the case framing fixes)."""
    meta = request.META
    return bool(meta.get("mod_wsgi.process_group")) and meta.get("SERVER_PROTOCOL") == "HTTP/1.1"


def frame_chunks_if_relayed(response, request):
    """Frame ``response``'s streamed body in HTTP/1.1 chunks when a mod_wsgi daemon serves it; return the response."""
    if behind_mod_wsgi_daemon(request):
        response.streaming_content = chunked(response.streaming_content)
        response["Transfer-Encoding"] = "chunked"
        response["Connection"] = "close"
    return response


def chunked(chunks):
    """``chunks`` as HTTP/1.1 chunked transfer coding; the last chunk only once ``chunks`` ends without an error."""
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            if chunk:  # an empty chunk would end the body
                yield b"%x\r\n%s\r\n" % (len(chunk), chunk)
        yield LAST_CHUNK
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
