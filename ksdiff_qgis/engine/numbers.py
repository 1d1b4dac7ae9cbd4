"""Numbers as people type them: a decimal comma (German, French habit) where the plugin reads a decimal point."""
from __future__ import annotations

import re

_DECIMAL_COMMA = re.compile(r"[-+]?\d+,\d+")


def decimal_comma_number(text: str) -> str | None:
    """'0,5' -> '0.5' when ``text`` is one number written with a decimal comma, else None."""
    text = text.strip()
    return text.replace(",", ".") if _DECIMAL_COMMA.fullmatch(text) else None


def decimal_comma_gains(text: str) -> str | None:
    """The MTF gains ``text`` means when written with decimal commas ('0,35' -> '0.35', '0,35; 0,3' -> '0.35, 0.3'),
    else None. A gain lies in (0, 1), so a lone '0' followed by digits is one gain, not two."""
    parts = [t.strip() for t in re.split(r"[,;\s]+", text) if t.strip()]
    out, i, merged = [], 0, False
    while i < len(parts):
        if parts[i] == "0" and i + 1 < len(parts) and parts[i + 1].isdigit():
            out.append("0." + parts[i + 1])
            i, merged = i + 2, True
        else:
            out.append(parts[i])
            i += 1
    return ", ".join(out) if merged else None
