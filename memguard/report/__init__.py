"""L5 presentation: text, Markdown, JSON, HTML and charts (issue 10)."""

from __future__ import annotations
