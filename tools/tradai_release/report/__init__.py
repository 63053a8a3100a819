"""The release board: a static, self-contained site (``invoke report``); see docs/architecture.md §16.

``board`` reads what to show, ``charts`` draws the SVG charts, ``site`` renders the Jinja2 templates
and writes the directory. Nothing here writes to a backend.
"""

from __future__ import annotations

from tradai_release.report.site import SiteResult, build_site

__all__ = ["SiteResult", "build_site"]
