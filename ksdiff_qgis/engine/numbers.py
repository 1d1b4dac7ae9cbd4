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


def share(count: int, total: int, digits: int = 3) -> str:
    """``count`` of ``total`` as a percentage with ``digits`` decimals: '0.030%'; '< 0.001%' when some were
    counted but the share rounds to zero (QA: '0.000%' was printed for 18 clipped values), '0%' for none."""
    if count <= 0 or total <= 0:
        return "0%"
    value = 100.0 * count / total
    floor = 10.0 ** -digits
    return f"< {floor:.{digits}f}%" if round(value, digits) < floor else f"{value:.{digits}f}%"
