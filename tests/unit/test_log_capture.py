"""The log cap: whole lines, the first and the last kept, the cut marked; nothing cut under the cap."""

from __future__ import annotations

import io

from bot.adapters.log_capture import Section, lines_of, write_capped


def capped(chunks: list[bytes], cap: int, header: bytes | None = None) -> bytes:
    handle = io.BytesIO()
    written = write_capped([Section(header, chunks)], handle, cap)
    assert written == len(handle.getvalue())
    return handle.getvalue()


def test_lines_are_reassembled_across_chunks() -> None:
    assert list(lines_of([b"ab", b"c\nd", b"e\n", b"tail"])) == [b"abc\n", b"de\n", b"tail\n"]


def test_under_the_cap_nothing_changes() -> None:
    data = b"".join(f"line {i}\n".encode() for i in range(100))
    assert capped([data[:33], data[33:]], cap=len(data)) == data


def test_over_the_cap_the_middle_is_cut_and_marked() -> None:
    lines = [f"{i:04d} {'x' * 44}\n".encode() for i in range(1000)]  # 50 bytes each, 50 kB
    out = capped([b"".join(lines)], cap=5000)
    kept = out.splitlines(keepends=True)
    marker = next(line for line in kept if line.startswith(b"----- rollbot cut"))
    position = kept.index(marker)
    assert kept[:position] == lines[:50], "the first half of the cap: the first lines"
    assert kept[position + 1 :] == lines[-50:], "the other half: the last lines"
    assert b"cut 900 line(s), 45000 bytes" in marker and b"cap of 5000 bytes" in marker
    assert len(out) <= 5000 + len(marker)


def test_headers_count_as_lines_and_sections_share_one_cap() -> None:
    handle = io.BytesIO()
    sections = [Section(b"===== a =====\n", [b"a1\na2\n"]), Section(b"===== b =====\n", [b"b1\n"])]
    write_capped(sections, handle, cap=1000)
    assert handle.getvalue() == b"===== a =====\na1\na2\n===== b =====\nb1\n"
