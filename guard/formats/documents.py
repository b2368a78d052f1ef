"""Document readers for uploads: every part of an Office or PDF file a person or program can read.

Office files (DOCX, XLSX, PPTX, and OpenDocument) are zip packages of XML parts. The parts are found
through the package's relationships, starting at ``_rels/.rels`` (so a decoy ``word/document.xml``
cannot stand in for the main part Word opens), and then every other XML part of the package is read
as well: document properties, comments, headers and footers, notes, charts, custom XML. From each
part come its character data, field codes, alt text, sheet and defined names, and the external
targets of its relationships (hyperlinks carry queries). XML is read with the standard library;
packages declaring a DTD are refused and expansion is capped (zip bombs fail closed).

PDFs are read with pypdf: the text layer of every page, ``/Info`` and XMP metadata, outline titles,
annotations (comments, links), AcroForm and XFA field values, and embedded files. A page with images
and no text (a scan) is unreadable: the policy's ``unreadable`` rule applies, never a silent pass.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from guard.formats.base import BodyTooLarge, UnreadableContent

MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_ARCHIVE_BYTES = 128 * 1024 * 1024
MAX_MEMBERS = 10_000
MAX_RATIO = 200  # deflated XML shrinks 5-20x; a member expanding 200x past 1 MB is a bomb
MAX_PDF_PAGES = 2000
MAX_NESTING = 2  # files embedded in files embedded in an upload

# Character data of these elements belongs to the run around it (a word split over runs is one word).
_INLINE = frozenset({"t", "delText", "instrText", "span", "a", "s", "r"})
# A line ends after these (paragraphs, table rows, list and comment entries).
_BLOCK = frozenset({"p", "h", "tr", "row", "si", "comment", "cm", "definedName", "sheet", "property",
                    "text", "list-item", "table-row"})
# Attributes whose values a reader sees: alt text, field codes, WordArt, comment and revision authors,
# pivot-cache values; and the names of sheets, defined names, custom properties, table columns, authors.
_ATTRIBUTES = frozenset({"descr", "title", "instr", "string", "author", "v"})
_NAMED = frozenset({"sheet", "definedName", "property", "tableColumn", "cmAuthor", "person"})
_REL_SUFFIX_SHARED_STRINGS = "/sharedStrings"


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# ---------------------------------------------------------------------------------------------- zip

class Package:
    """A zip package read with limits on members, expansion and XML features."""

    def __init__(self, data: bytes) -> None:
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError):
            raise UnreadableContent("corrupt zip archive") from None
        infos = [info for info in self.zip.infolist() if not info.is_dir()]
        self.members = {info.filename: info for info in infos}
        if len({name.lower() for name in self.members}) != len(infos):
            # Part names are case-insensitive (OPC): readers differ on which of two same-named parts they use.
            raise UnreadableContent("document has two parts with the same name")
        if len(self.members) > MAX_MEMBERS:
            raise BodyTooLarge("document has too many parts")
        self.total = 0

    def read(self, name: str) -> bytes:
        info = self.members[name]
        if info.flag_bits & 0x1:
            raise UnreadableContent("encrypted document")
        if info.file_size > MAX_MEMBER_BYTES or (
                info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
            raise BodyTooLarge("document part expands past the size limit (zip bomb?)")
        try:
            with self.zip.open(info) as f:
                raw = f.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
            raise UnreadableContent("corrupt document part") from None
        self.total += len(raw)
        if len(raw) > MAX_MEMBER_BYTES or self.total > MAX_ARCHIVE_BYTES:
            raise BodyTooLarge("document expands past the size limit (zip bomb?)")
        return raw

    def xml(self, name: str) -> ET.Element:
        return parse_xml(self.read(name))

    def is_text(self, name: str) -> bool:
        """UTF-8 without NUL bytes in its first 4 KB: text, not an image, a font or an OLE object."""
        try:
            with self.zip.open(self.members[name]) as f:
                head = f.read(4096)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
            raise UnreadableContent("corrupt document part") from None
        if b"\x00" in head:
            return False
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            return e.start > len(head) - 4  # a character cut at the 4 KB mark
        return True


_DTD_MARKERS = tuple(m.encode(codec) for m in ("<!DOCTYPE", "<!ENTITY") for codec in ("utf-8", "utf-16-le",
                                                                                    "utf-16-be"))


def parse_xml(raw: bytes) -> ET.Element:
    """XML without DTDs (no entity expansion, no external entities)."""
    if any(marker in raw for marker in _DTD_MARKERS):
        raise UnreadableContent("document declares a DTD")
    try:
        return ET.fromstring(raw)
    except (ET.ParseError, RecursionError, ValueError):
        raise UnreadableContent("malformed document XML") from None


# ---------------------------------------------------------------------------------------------- XML text

@dataclass
class _TextWriter:
    """Character data of one XML part, with line breaks where a reader sees them."""

    shared: list[str]
    out: list[str]

    def element(self, el: ET.Element) -> None:
        name = _local(el.tag)
        for key, value in el.attrib.items():
            attribute = _local(key)
            if value.strip() and (attribute in _ATTRIBUTES or (attribute == "name" and name in _NAMED)):
                self.out.append(value + "\n")
        if name == "c" and len(el) and _local(el[0].tag) in ("v", "f", "is"):
            self.cell(el)
            return
        if name == "tab":
            self.out.append("\t")
        elif name in ("br", "cr", "line-break"):
            self.out.append("\n")
        if el.text and (el.text.strip() or name in _INLINE):  # a run of one space still parts two words
            self.out.append(el.text if name in _INLINE or len(el) else el.text + "\n")
        for child in el:
            self.element(child)
            if child.tail and child.tail.strip():
                self.out.append(child.tail)
        if name in _BLOCK:
            self.out.append("\n")

    def cell(self, el: ET.Element) -> None:
        """A spreadsheet cell: its shared or inline string, formula and value; cells end in a tab."""
        kind = el.get("t")
        for child in el:
            name = _local(child.tag)
            text = child.text or ""
            if name == "v" and kind == "s":
                index = int(text) if text.strip().isdigit() else -1
                if not 0 <= index < len(self.shared):
                    raise UnreadableContent("spreadsheet cell refers to a missing shared string")
                self.out.append(self.shared[index])
            elif name == "is":
                self.out.append("".join(t.text or "" for t in child.iter() if _local(t.tag) == "t"))
            elif name == "f" and text.strip():
                self.out.append(text + " ")
            elif text.strip():
                self.out.append(text)
        self.out.append("\t")


def xml_text(root: ET.Element, shared: list[str] | None = None) -> str:
    writer = _TextWriter(shared or [], [])
    try:
        writer.element(root)
    except RecursionError:
        raise UnreadableContent("document nesting too deep") from None
    return "".join(writer.out)


# ---------------------------------------------------------------------------------------------- Office

@dataclass(frozen=True)
class Relationship:
    type: str
    target: str
    external: bool


def _rels_name(part: str) -> str:
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels")


def relationships(package: Package, part: str) -> list[Relationship]:
    """The relationships of ``part`` ("" for the package), targets resolved to member names."""
    name = _rels_name(part)
    if name not in package.members:
        return []
    folder = posixpath.dirname(part)
    found = []
    for rel in package.xml(name):
        target, external = rel.get("Target", ""), rel.get("TargetMode", "") == "External"
        if not external:
            path = target[1:] if target.startswith("/") else posixpath.join(folder, target)
            target = posixpath.normpath(path)
        found.append(Relationship(rel.get("Type", ""), target, external))
    return found


def office_text(data: bytes, depth: int = 0) -> str:
    """Every XML part of an Office package: those its relationships reach first, then all others."""
    package = Package(data)
    order: list[str] = []
    links: list[str] = []
    shared_part = ""
    queue, seen = [""], {""}
    while queue:  # breadth first from the package relationships, in the order the package gives
        part = queue.pop(0)
        for rel in relationships(package, part):
            if rel.external:
                links.append(rel.target)
            elif rel.target in package.members and rel.target not in seen:
                seen.add(rel.target)
                order.append(rel.target)
                queue.append(rel.target)
                if rel.type.endswith(_REL_SUFFIX_SHARED_STRINGS):
                    shared_part = rel.target
    if not order and "mimetype" not in package.members:
        raise UnreadableContent("zip archive is not an Office document")
    view_state = "settings.xml" if "mimetype" in package.members else ""  # OpenDocument's, not the text's
    order += sorted(n for n in package.members if n not in seen and n.endswith(".xml") and n != view_state)
    shared = _shared_strings(package, shared_part) if shared_part else []
    out: list[str] = []
    for name in order:
        if name == shared_part:
            continue  # its strings are read where the cells use them
        if name.endswith((".xml", ".rels")) or name.startswith("customXml/"):
            raw = package.read(name)  # LibreOffice writes some parts empty
            text = xml_text(parse_xml(raw), shared).strip() if raw.strip() else ""
        elif posixpath.basename(posixpath.dirname(name)) == "embeddings" and depth < MAX_NESTING:
            text = _embedded_text(package.read(name), depth + 1)
        elif package.is_text(name):  # an HTML, RTF or text chunk Word imports (altChunk), and the like
            text = _markup_or_text(package.read(name), shared)
        else:
            continue  # images, fonts and other binary objects: nothing a text reader shows
        if text:
            out.append(text)
    if links:
        out.append("\n".join(links))
    return "\n\n".join(out)


def _markup_or_text(raw: bytes, shared: list[str]) -> str:
    """A part that is not named .xml: VML drawings (comment boxes, WordArt) are XML; an HTML chunk
    that does not parse, or plain text, is read as it is."""
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        try:
            return xml_text(parse_xml(raw), shared).strip()
        except UnreadableContent:
            pass  # HTML, or VML as Office writes it (unclosed <br>): its characters, tags and all
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UnreadableContent("document part is neither XML nor text") from None


def _shared_strings(package: Package, name: str) -> list[str]:
    return ["".join(t.text or "" for t in si.iter() if _local(t.tag) == "t")
            for si in package.xml(name) if _local(si.tag) == "si"]


def _embedded_text(data: bytes, depth: int) -> str:
    """An Office or PDF file embedded in a document; other embedded objects are drawings to a reader."""
    if data.startswith(b"%PDF-"):
        return pdf_text(data, depth)
    if data.startswith(b"PK\x03\x04"):
        return office_text(data, depth)
    return ""


# ---------------------------------------------------------------------------------------------- PDF

def _pdf_strings(value: Any, depth: int = 0) -> Iterable[str]:
    """Text of a PDF value: strings, and strings inside arrays and dictionaries (rich text, options)."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    if depth > 8:
        return
    if isinstance(value, IndirectObject):
        value = value.get_object()
    if isinstance(value, NameObject):
        yield str(value)[1:]
    elif isinstance(value, str):
        yield str(value)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, ArrayObject):
        for item in value:
            yield from _pdf_strings(item, depth + 1)
    elif isinstance(value, DictionaryObject):
        for item in value.values():
            yield from _pdf_strings(item, depth + 1)


_ANNOTATION_KEYS = ("/Contents", "/T", "/Subj", "/RC", "/TU", "/V", "/DV", "/NM")
_FIELD_KEYS = ("/T", "/TU", "/TM", "/V", "/DV", "/Opt")


def _pdf_stream_xml(stream: Any) -> str:
    return xml_text(parse_xml(stream.get_object().get_data()))


def _outline_titles(outline: Any) -> Iterable[str]:
    for item in outline:
        if isinstance(item, list):
            yield from _outline_titles(item)
        elif getattr(item, "title", None):
            yield str(item.title)


def _undecodable(text: str) -> bool:
    """Mostly replacement or private-use characters: glyph codes of a font without a Unicode map, which
    the viewer draws as words but which no recognizer can read."""
    visible = [c for c in text if not c.isspace()]
    bad = sum(1 for c in visible if c == "\ufffd" or "\ue000" <= c <= "\uf8ff" or c < " ")
    return len(visible) >= 8 and bad * 5 > len(visible)


def _page_has_images(page: Any) -> bool:
    resources: Any = page.get("/Resources")
    xobjects: Any = resources.get_object().get("/XObject") if resources is not None else None
    return bool(xobjects) and any(x.get_object().get("/Subtype") == "/Image"
                                  for x in xobjects.get_object().values())


class NoTextLayer(UnreadableContent):
    """A PDF with pages that are images (a scan): the proxy may read them with OCR (guard.image_parts).

    ``text`` is what the PDF holds as text besides those pages (other pages, annotations, metadata,
    form fields, attachments): it is inspected like any document's text. Only an uploaded PDF itself
    raises this; a scan embedded in another file is plain unreadable content.
    """

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text

    def __reduce__(self) -> tuple[type[NoTextLayer], tuple[str, str]]:
        return type(self), (str(self), self.text)


def _pdf_read(data: bytes, depth: int) -> str:
    import pypdf  # only uploads need it; keeps proxy start-up light

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise UnreadableContent("encrypted PDF")
    if len(reader.pages) > MAX_PDF_PAGES:
        raise BodyTooLarge("PDF has too many pages")
    out: list[str] = []
    page_text = False
    scanned: int | None = None  # the first page with images and no text layer
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text() or ""
        if text.strip():
            if _undecodable(text):
                raise UnreadableContent(f"PDF page {number} has text that cannot be decoded (fonts without "
                                        "a Unicode map)")
            page_text = True
            out.append(text)
        elif _page_has_images(page) and scanned is None:
            scanned = number
        for annotation in page.get("/Annots") or []:
            annotation = annotation.get_object()
            out.extend(s for key in _ANNOTATION_KEYS if key in annotation
                       for s in _pdf_strings(annotation[key]))
            action = annotation.get("/A")
            if action is not None and "/URI" in action.get_object():
                out.extend(_pdf_strings(action.get_object()["/URI"]))
    out.extend(s for value in (reader.metadata or {}).values() for s in _pdf_strings(value))
    root: Any = reader.trailer["/Root"].get_object()
    if "/Metadata" in root:
        out.append(_pdf_stream_xml(root["/Metadata"]))
    out.extend(_outline_titles(reader.outline))
    for field in (reader.get_fields() or {}).values():
        out.extend(s for key in _FIELD_KEYS if key in field for s in _pdf_strings(field[key]))
    form: Any = root.get("/AcroForm")
    xfa: Any = form.get_object().get("/XFA") if form is not None else None
    if xfa is not None:
        xfa = xfa.get_object()
        streams = list(xfa)[1::2] if isinstance(xfa, list) else [xfa]
        out.extend(_pdf_stream_xml(s) for s in streams)
    for name, files in reader.attachments.items():
        out.append(name)
        if depth >= MAX_NESTING:
            raise UnreadableContent("PDF embeds files too deeply")
        out.extend(_attachment_text(content, depth + 1) for content in files)
    if scanned is not None or not page_text:
        message = (f"PDF page {scanned} has no text layer (scanned image?)" if scanned is not None
                   else "PDF without a text layer (scanned image?)")
        if depth:
            raise UnreadableContent(message)
        raise NoTextLayer(message, "\n".join(s for s in out if s.strip()))
    return "\n".join(s for s in out if s.strip())


def _attachment_text(data: bytes, depth: int) -> str:
    from guard.formats.uploads import extract_file_text  # the same reader an upload of it gets

    return extract_file_text(data, depth=depth)


def pdf_text(data: bytes, depth: int = 0) -> str:
    """Everything a PDF viewer shows as text; a scanned or encrypted PDF is unreadable."""
    from pypdf.errors import LimitReachedError, PyPdfError

    try:
        return _pdf_read(data, depth)
    except LimitReachedError:
        raise BodyTooLarge("PDF stream decompresses past the size limit") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError,
            NotImplementedError, IndexError, AssertionError, ZeroDivisionError):
        raise UnreadableContent("unreadable PDF") from None


READERS: dict[str, Callable[[bytes, int], str]] = {"pdf": pdf_text, "office": office_text}
