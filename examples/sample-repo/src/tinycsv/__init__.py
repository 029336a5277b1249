"""A tiny CSV reader."""


def parse_line(line: str, sep: str = ",") -> list[str]:
    """Split one CSV line; quoted fields may contain the separator."""
    fields, current, quoted = [], "", False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            fields.append(current)
            current = ""
        else:
            current += ch
    fields.append(current)
    return fields
