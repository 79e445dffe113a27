"""MkDocs hook: the docstrings' Sphinx roles read as plain code on the site.

The docstrings are Google style with Sphinx cross-reference roles (``:class:`x```) and literal
blocks introduced by ``::``, which Markdown shows as written. This drops the role names and the
doubled colon from the rendered pages.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):(<code>)~?")
LITERAL = re.compile(r"::(</p>)")


def on_page_content(html: str, **kwargs) -> str:
    return LITERAL.sub(r":\1", ROLE.sub(r"\1", html))
