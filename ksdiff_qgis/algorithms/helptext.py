"""An algorithm's help as the dialog's help panel shows it: its "- Label: text" lines as one HTML list.

``shortHelpString`` stays plain text, one line per item: QGIS 3.22's ``qgis_process help`` and the Python console's
``processing.algorithmHelp`` print it as it is (raw tags would show). QGIS's own dialog turns each line into a
paragraph; ``KeyedEnumDialog`` shows ``help_html`` instead, a list with the labels in bold.
"""
from __future__ import annotations

import html

ITEM = "- "   # a line starting so is one item of the list
# Qt's rich text indents a list by 40 px, a sixth of the narrow help panel: a bullet's width instead
LIST = '<ul style="-qt-list-indent:0; margin-left:14px">'


def help_html(title: str, text: str) -> str:
    """``text`` as HTML under the heading ``title``: its item lines as one list per run of items ("Label: text" with
    the label in bold), every other non-empty line a paragraph — as QGIS's dialog formats help (``formatHelp``)."""
    parts, items = [f"<h2>{html.escape(title)}</h2>"], []

    def close_list() -> None:
        if items:
            parts.append(LIST + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        line = line.strip()
        if line.startswith(ITEM):
            label, sep, rest = line[len(ITEM):].partition(": ")
            items.append(f"<b>{html.escape(label)}</b>: {html.escape(rest)}" if sep and len(label) <= 60
                         else html.escape(line[len(ITEM):]))
            continue
        close_list()
        if line:
            parts.append(f"<p>{html.escape(line)}</p>")
    close_list()
    return "".join(parts)


def has_items(text: str) -> bool:
    """Whether ``text`` has item lines (``help_html`` makes a list of them)."""
    return any(line.strip().startswith(ITEM) for line in text.splitlines())
