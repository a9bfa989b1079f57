"""HTML to PDF for every printed piece (the citizens' notice and stickers, the six-monthly review, a drill's
report): WeasyPrint, imported on use — it loads Pango, which the rest of the project does not need."""

from django.http import HttpResponse


def pdf(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html, base_url=None).write_pdf()


def document(html: str):
    """The laid-out document (its pages and boxes), for checking what a PDF says without a PDF reader."""
    from weasyprint import HTML

    return HTML(string=html, base_url=None).render()


def pdf_response(html: str, filename: str) -> HttpResponse:
    """The PDF shown in the browser, saved under `filename` if the reader downloads it."""
    response = HttpResponse(pdf(html), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
