"""Helpers for the notebook-output tests: the sanitizers a shared notebook meets.

Two allow-lists, applied with a real sanitizer (nh3, the Python binding of
Ammonia):

* GitHub's, from html-pipeline's ``SanitizationFilter`` (the list GitHub and
  many renderers of shared notebooks apply): no ``style``, no ``class``, no
  ``svg``, images only from http(s), no scripts, iframes or event attributes;
* JupyterLab's for an untrusted output (``packages/apputils/src/sanitizer.ts``):
  ``class`` and ``style`` kept, images of any source (data: URIs included),
  no ``svg``; CSS declarations are checked value by value there: a value
  with ``var(...)`` matches none of its patterns, and keyword properties take
  only the keywords it lists, so those declarations are dropped here too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

__all__ = ["github", "jupyterlab_untrusted", "text_of"]

_GITHUB_TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "br", "b", "i", "strong", "em", "a", "pre",
    "code", "img", "tt", "div", "ins", "del", "sup", "sub", "p", "ol", "ul", "table", "thead",
    "tbody", "tfoot", "blockquote", "dl", "dt", "dd", "kbd", "q", "samp", "var", "hr", "ruby",
    "rt", "rp", "li", "tr", "td", "th", "s", "strike", "summary", "details", "caption", "figure",
    "figcaption", "abbr", "bdo", "cite", "dfn", "mark", "small", "span", "time", "wbr",
}
_GITHUB_ANY = {
    "abbr", "accept", "accept-charset", "accesskey", "action", "align", "alt",
    "aria-describedby", "aria-hidden", "aria-label", "aria-labelledby", "axis", "border",
    "cellpadding", "cellspacing", "char", "charoff", "charset", "checked", "clear", "cols",
    "colspan", "color", "compact", "coords", "datetime", "dir", "disabled", "enctype", "for",
    "frame", "headers", "height", "hreflang", "hspace", "ismap", "label", "lang", "maxlength",
    "media", "method", "multiple", "name", "nohref", "noshade", "nowrap", "open", "progress",
    "prompt", "readonly", "rev", "role", "rows", "rowspan", "rules", "scope", "selected",
    "shape", "size", "span", "start", "summary", "tabindex", "target", "title", "type",
    "usemap", "valign", "value", "vspace", "width", "itemprop",
}

_LAB_TAGS = {
    "a", "abbr", "acronym", "address", "area", "article", "aside", "audio", "b", "bdi", "bdo",
    "big", "blockquote", "br", "button", "canvas", "caption", "center", "cite", "code", "col",
    "colgroup", "data", "datalist", "dd", "del", "details", "dfn", "dir", "div", "dl", "dt",
    "em", "fieldset", "figcaption", "figure", "font", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hgroup", "hr", "i", "img", "input", "ins", "kbd", "label", "legend",
    "li", "map", "mark", "menu", "meter", "nav", "nobr", "ol", "optgroup", "option", "output",
    "p", "pre", "progress", "q", "s", "samp", "section", "select", "small", "source", "span",
    "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "textarea", "tfoot",
    "th", "thead", "time", "tr", "track", "tt", "u", "ul", "var", "video", "wbr",
}
_LAB_ANY = {"class", "dir", "draggable", "hidden", "id", "inert", "itemprop", "itemref",
            "itemscope", "lang", "spellcheck", "style", "title", "translate"}
_LAB_BY_TAG = {
    "img": {"align", "alt", "border", "height", "hspace", "ismap", "name", "src", "usemap",
            "vspace", "width"},
    "th": {"abbr", "align", "axis", "colspan", "headers", "height", "nowrap", "rowspan",
           "scope", "valign", "width"},
    "td": {"abbr", "align", "axis", "colspan", "headers", "height", "nowrap", "rowspan",
           "scope", "valign", "width"},
    "table": {"align", "border", "cellpadding", "cellspacing", "frame", "rules", "summary",
              "width"},
    "a": {"href", "hreflang", "name", "rel", "target", "type"},
}


def github(fragment: str) -> str:
    """*fragment* as GitHub's allow-list leaves it."""
    return nh3.clean(fragment, tags=_GITHUB_TAGS,
                     clean_content_tags={"script", "style", "iframe"},
                     attributes={"*": _GITHUB_ANY, "a": {"href"}, "img": {"src", "longdesc"},
                                 "div": {"itemscope", "itemtype"}},
                     url_schemes={"http", "https", "mailto"}, link_rel=None)


# JupyterLab's value patterns for the keyword properties memguard's outputs use.
_LAB_KEYWORDS = {
    "word-break": {"normal", "keep-all", "break-all"},
    "overflow-wrap": {"normal", "break-word"},
    "word-wrap": {"normal", "break-word"},
    "white-space": {"normal", "pre", "nowrap", "pre-wrap", "pre-line"},
    "text-align": {"left", "right", "center", "justify"},
    "display": {"inline", "block", "inline-block", "table", "table-cell", "flex", "none"},
}


def _lab_declaration(declaration: str) -> bool:
    name, _, value = declaration.partition(":")
    name, value = name.strip().lower(), value.strip().lower()
    if not name or "var(" in value:
        return False
    allowed = _LAB_KEYWORDS.get(name)
    return allowed is None or value in allowed


def _lab_attribute(element: str, attribute: str, value: str) -> str | None:
    del element
    if attribute != "style":
        return value
    kept = [d for d in value.split(";") if _lab_declaration(d)]
    return ";".join(kept) or None


def jupyterlab_untrusted(fragment: str) -> str:
    """*fragment* as an untrusted JupyterLab output shows it (see the module docstring)."""
    attributes = {tag: _LAB_ANY | extra for tag, extra in _LAB_BY_TAG.items()}
    attributes["*"] = _LAB_ANY
    return nh3.clean(fragment, tags=_LAB_TAGS, clean_content_tags={"script", "style", "iframe"},
                     attributes=attributes, attribute_filter=_lab_attribute,
                     url_schemes={"http", "https", "mailto", "data"}, link_rel=None)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(fragment: str) -> str:
    """The text a reader sees in *fragment*, whitespace collapsed."""
    parser = _Text()
    parser.feed(fragment)
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()
