"""The one validation layer: every check of outside input (config values, command-line values, templates,
model directories, demo requests, JSON artifacts, text bound for a terminal) lives here, so a call site
asks one question and gets either a clean value or a UserError with one line that names the problem.
"""

from __future__ import annotations

import json
import math
import os
import re
import string
import unicodedata
from pathlib import Path

from moviegpt.core.errors import UserError, terminal

PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def need(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def number(name: str, value, *, integer: bool = False, lo: float | None = None, hi: float | None = None):
    """A finite number (int when `integer`) within [lo, hi]; YAML's '1e-4' (read as text) is accepted."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{name}={value!r} must be a number")
    if not math.isfinite(value):
        raise UserError(f"{name}={value!r} must be a finite number")
    if integer:
        if float(value) != int(value):
            raise UserError(f"{name}={value!r} must be a whole number")
        value = int(value)
    if lo is not None and value < lo:
        raise UserError(
            f"{name}={value!r} must be positive" if 0 < lo < 1e-6 else f"{name}={value!r} must be at least {lo:g}"
        )
    if hi is not None and value > hi:
        raise UserError(f"{name}={value!r} must be at most {hi:g}")
    return value


def profile_name(name: str) -> str:
    """A profile becomes part of a directory name: letters, digits, '_', '.', '-', nothing that climbs out."""
    need(
        isinstance(name, str) and bool(PROFILE_NAME.match(name)) and ".." not in name,
        f"profile name {name!r} must be 1-64 letters, digits, '_', '.' or '-' (it names the run directory)",
    )
    return name


def inside(path: Path, root: Path, what: str) -> Path:
    """`path` resolved, refused unless it lies inside `root`."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    need(resolved == base or base in resolved.parents, f"{what} {path} would lie outside {root}")
    return resolved


def template(text: str, columns=None) -> list[str]:
    """A film template's fields: fields_of(text), and {title} before {overview}. With `columns`, each field
    must be one of them."""
    fields = fields_of(text)
    need("title" in fields and "overview" in fields, "text.template must contain {title} and {overview}")
    need(text.index("{title") < text.index("{overview"), "text.template must name {title} before {overview}")
    if columns is not None:
        missing = [f for f in fields if f not in columns]
        need(not missing, f"text.template uses field(s) {', '.join(missing)} that the data does not have")
    return fields


def fields_of(text: str) -> list[str]:
    """The fields a template (or a piece of one) names, checked: names only (no positions, attributes or
    indexing), and a format spec that works on text."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        raise UserError(
            f"text.template is not a valid template ({e}); write fields as {{title}}, literal braces as {{{{ and }}}}"
        ) from None
    fields = []
    for _, name, spec, conv in parts:
        if name is None:
            continue
        need(
            name.isidentifier(),
            f"text.template field {{{name}}} must be a column name such as {{title}} "
            "(no positions, attributes or indexing)",
        )
        try:
            ("{0" + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}").format("text")
        except (ValueError, TypeError) as e:
            raise UserError(f"text.template field {{{name}}} has a format that text does not take ({e})") from None
        fields.append(name)
    return list(dict.fromkeys(fields))


def model_dir_is_data(path: Path) -> None:
    """A local model or tokenizer directory must be data: its configs may not name Python code to run
    (`auto_map`, a custom class module), which transformers would offer to execute."""
    path = Path(path)
    for name in ("config.json", "tokenizer_config.json", "generation_config.json", "preprocessor_config.json"):
        f = path / name
        if not f.is_file():
            continue
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read {f}: {e}") from None
        need(isinstance(d, dict), f"{f} must hold a JSON object")
        need(
            "auto_map" not in d,
            f"{f} names its own Python code (auto_map); moviegpt never runs code from a model directory",
        )
    need(not list(path.glob("*.py")), f"{path} holds Python files; moviegpt never runs code from a model directory")


def writable_folder(path: Path, what: str, fix: str) -> Path:
    """`path` exists as a folder this process can write (made if missing), or one line naming it and the fix."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{what} {path} is a file, not a folder (or lies under one); {fix}") from None
    except OSError as e:
        raise UserError(f"cannot create {what} {path} ({e.strerror}); {fix}") from None
    need(path.is_dir(), f"{what} {path} is a file, not a folder; {fix}")
    need(os.access(path, os.W_OK | os.X_OK), f"{what} {path} is not writable; {fix}")
    import tempfile

    try:  # a folder can pass the access check and still refuse a file (/proc, a read-only mount)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".moviegpt-probe-"):
            pass
    except OSError as e:
        raise UserError(f"{what} {path} does not take new files ({e.strerror}); {fix}") from None
    return path


def text_arg(name: str, value: str | None, limit: int = 2000) -> str | None:
    """A text given on the command line (a title, a prompt): UTF-8, and at most `limit` characters. Bytes that
    are not UTF-8 reach Python as lone surrogates, which no tokenizer or terminal takes."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{name} is not valid UTF-8 text; give it in UTF-8") from None
    need(len(value) <= limit, f"{name} is longer than {limit:,} characters")
    return value


def plain(text, limit: int | None = None) -> str:
    """One line of text from outside (a request field): controls removed, bounded, NFC-normalised."""
    text = unicodedata.normalize("NFC", terminal(text).replace("\n", " "))
    return text[:limit] if limit else text


def dumps(obj, **kw) -> str:
    """Strict JSON: NaN and Infinity are refused, not written as invalid JSON."""
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except ValueError:
        raise UserError("a result holds NaN or infinity, which JSON cannot store; the run diverged") from None


def read_json(path: Path, what: str, fix: str):
    """A JSON artifact, or one line naming the file, what is wrong and what to do."""
    try:
        return json.loads(Path(path).read_text(), parse_constant=_no_constant)
    except FileNotFoundError:
        raise UserError(f"{what} {path} is missing; {fix}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{what} {path} is damaged ({str(e).splitlines()[0]}); {fix}") from None


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads(text):
    """Strict JSON from outside: NaN, Infinity and -Infinity are refused."""
    return json.loads(text, parse_constant=_no_constant)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write a file so a reader sees the old one or the whole new one: a temporary file of a unique name in the same
    folder, created exclusively (O_EXCL: never through a link planted at that name, never shared with a second
    writer), then renamed over the target (a rename replaces a link at the target itself, never its target)."""
    import tempfile

    path = Path(path)
    data = text if isinstance(text, bytes) else text.encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


MAX_CACHE_BYTES = 1 << 20  # a cache entry moviegpt wrote (a plan, a peak, a pointer) is far smaller


def read_small_json(path: Path, limit: int = MAX_CACHE_BYTES):
    """A small JSON file moviegpt wrote for itself (a cache entry), or None when it is missing, not a regular file (a
    link, a FIFO, a folder), larger than `limit`, or not strict JSON: a cache that cannot be read is rebuilt."""
    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > limit:
            return None
        return loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
