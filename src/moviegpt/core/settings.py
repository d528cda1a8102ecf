"""Reading settings: profiles, YAML files and `--set` overrides into a checked `Config`.

Profiles ship inside the package (`moviegpt/profiles`, the repository's `configs/`), found through
importlib.resources, so an installed wheel has them too. YAML is read without aliases (a few hundred bytes
of nested aliases can expand to gigabytes) and every value is checked against its field's metadata
(type, range, choices) before anything is built from it.
"""

from __future__ import annotations

import dataclasses
import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from moviegpt.core import validate
from moviegpt.core.config import SECTIONS, Config, all_keys, default_of
from moviegpt.core.errors import UserError

MAX_CONFIG_BYTES = 1 << 20
RECORDED = ("run_name", "resolved")  # what a run's config.yaml adds to the settings


def profiles_dir() -> Path:
    return Path(str(resources.files("moviegpt") / "profiles"))


def profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


MAX_DEPTH = 16  # nesting of mappings and lists in a config or a --set value (the deepest setting needs 4)


class _NoAliases(yaml.SafeLoader):
    """safe_load without aliases (`*name` is refused before anything is expanded) and no deeper than MAX_DEPTH
    (a value of thousands of nested brackets is refused before it can exhaust the recursion limit)."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise UserError(f"YAML aliases (*{event.anchor}) are not allowed in moviegpt settings; write the value out")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise UserError(f"settings nested deeper than {MAX_DEPTH} levels are not allowed; is it a config?")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        """A key given twice is refused: YAML would keep the last one silently (a second `train:` would drop the
        whole first block)."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                line = key_node.start_mark.line + 1
                raise UserError(f"the setting {key!r} is given twice (again at line {line}); keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str):
    if len(text) > MAX_CONFIG_BYTES:
        raise UserError(f"settings of more than {MAX_CONFIG_BYTES >> 20} MB are not allowed; is it a config?")
    return yaml.load(text, Loader=_NoAliases)  # noqa: S506 (a SafeLoader subclass)


def read_yaml(path: Path) -> dict:
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # a FIFO would block the read until something writes to it
            raise UserError(f"config file {path} is not a regular file; give the path of a YAML file")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"config file {path} is larger than {MAX_CONFIG_BYTES >> 20} MB; is it a config?")
        data = parse_yaml(path.read_text())
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read config file {path}: {getattr(e, 'strerror', None) or e}") from None
    except yaml.YAMLError as e:
        raise UserError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def _unknown(key: str) -> UserError:
    close = difflib.get_close_matches(key, list(all_keys()), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else "; `moviegpt config --keys` lists them all"
    return UserError(f"unknown config key '{key}'{hint}")


def coerce(key: str, value: Any, f: dataclasses.Field) -> Any:
    """Check one value against its field: type, range, choices. Strings stay strings."""
    kind, _, optional = str(f.type).partition(" | ")
    meta = f.metadata
    name = f"config value {key}"
    if value is None:
        validate.need(bool(optional), f"{name} must be set (it cannot be null)")
        return None
    if kind == "bool":
        validate.need(isinstance(value, bool), f"{name}={value!r} must be true or false")
    elif kind in ("int", "float"):
        value = validate.number(name, value, integer=kind == "int", lo=meta.get("lo"), hi=meta.get("hi"))
        value = float(value) if kind == "float" else value
    elif kind == "str":
        validate.need(isinstance(value, str), f"{name}={value!r} must be text")
        validate.need(len(value) <= 10_000, f"{name} is longer than 10,000 characters")
    elif kind == "list":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        validate.need(
            isinstance(value, list)
            and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value),
            f"{name}={value!r} must be a list",
        )
    elif kind == "dict":
        validate.need(
            isinstance(value, dict) and all(isinstance(k, str) for k in value),
            f"{name}={value!r} must be a mapping of names to values",
        )
    choices = meta.get("choices")
    if callable(choices) and value in getattr(choices, "common", ()):
        return value
    if choices is not None:
        allowed = list(choices() if callable(choices) else choices)
        close = difflib.get_close_matches(str(value), allowed, n=1)
        validate.need(
            value in allowed,
            f"{name}={value!r} is not one of {', '.join(map(str, allowed))}"
            + (f"; did you mean '{close[0]}'?" if close else ""),
        )
    return value


def _parse_override(key: str, raw: str, f: dataclasses.Field | None):
    """An override's text as YAML; for text settings the raw text is kept when YAML would make it something
    else (a template holding ': ' or braces)."""
    text_field = f is not None and str(f.type).partition(" | ")[0] == "str"
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        if text_field:
            return raw
        raise UserError(f"override {key}={raw!r} is not a valid value ({str(e).splitlines()[0]}); quote it") from None
    if text_field and value is not None and not isinstance(value, str):
        return raw
    return value


def apply(cfg: Config, key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[:2] == ["train", "trainer_args"] and len(parts) == 3:  # one TrainingArguments field
        cfg.train.trainer_args = {**cfg.train.trainer_args, parts[2]: value}
        return
    fields = all_keys()
    if key not in fields or (len(parts) == 1 and parts[0] in SECTIONS):
        raise _unknown(key)
    target = getattr(cfg, parts[0]) if len(parts) == 2 else cfg
    setattr(target, parts[-1], coerce(key, value, fields[key]))


def flatten(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if not isinstance(k, str):
            raise UserError(f"config key {k!r} must be text")
        if k in SECTIONS:
            if not isinstance(v, dict):
                raise UserError(f"config section '{k}' must be a mapping of settings, not {type(v).__name__}")
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def from_dict(d: dict, overrides: list[str] | None = None) -> Config:
    cfg = Config()
    for key, value in flatten(d).items():
        apply(cfg, key, value)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserError(f"override '{item}' must look like section.key=value")
        key = key.strip()
        apply(cfg, key, _parse_override(key, raw, all_keys().get(key)))
    check(cfg)
    return cfg


def load_config(name_or_path: str, overrides: list[str] | None = None) -> Config:
    """A profile by name (`moviegpt profiles`) or a YAML path, then `key=value` overrides."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if not validate.PROFILE_NAME.match(name_or_path) or name_or_path not in profiles():
            close = difflib.get_close_matches(name_or_path, profiles(), n=1)
            raise UserError(
                f"unknown profile '{name_or_path}'"
                + (f" (did you mean '{close[0]}'?)" if close else "")
                + f"; profiles: {', '.join(profiles())} (or give a YAML path)"
            )
        path = profiles_dir() / f"{name_or_path}.yaml"
    d = read_yaml(path)
    if "profile" not in d and not validate.PROFILE_NAME.match(path.stem):
        raise UserError(f"config file name {path.name!r} cannot name a run; add a 'profile:' line with a simple name")
    return from_dict({"profile": path.stem, **d}, overrides)


def load_run_config(run_dir: Path) -> Config:
    """The config a run was made with (its config.yaml, less what was recorded about the run)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise UserError(f"{run_dir} is not a moviegpt run directory (no config.yaml)")
    return from_dict({k: v for k, v in read_yaml(path).items() if k not in RECORDED})


def check(cfg: Config) -> None:
    """Checks across settings, and of settings whose meaning needs more than their type and range."""
    t, x, d, m = cfg.train, cfg.text, cfg.data, cfg.model
    need = validate.need
    validate.profile_name(cfg.profile)
    validate.template(x.template)
    need(
        t.epochs > 0 or t.max_steps > 0 or t.budget_minutes,
        "bad config value: train.epochs or train.max_steps must be positive",
    )
    need(
        not d.streaming or t.max_steps > 0,
        "bad config value: data.streaming=true needs train.max_steps (a stream has no length)",
    )
    need(
        not t.keep_best or bool(t.eval_steps and t.save_steps and t.save_steps % t.eval_steps == 0),
        "bad config value: train.keep_best needs train.eval_steps and a train.save_steps that is a multiple of it",
    )
    need(
        not x.keep_apart or x.batching == "pack",
        "bad config value: text.keep_apart=true needs text.batching=pack (padded films are apart already)",
    )
    need(
        all(isinstance(f, (int, float)) and 0 <= f <= 1 for f in t.film_curve),
        f"bad config value: train.film_curve={t.film_curve} must be fractions of the run's steps, from 0 to 1",
    )
    s = d.splits
    need(
        len(s) == 3 and all(isinstance(v, (int, float)) and v >= 0 for v in s) and abs(sum(s) - 1) < 1e-6,
        f"bad config value: data.splits={s} must be three non-negative fractions (train, validation, test) "
        "summing to 1",
    )
    need(s[0] > 0 and s[2] > 0, f"bad config value: data.splits={s} needs a non-empty train and test split")
    need(m.name.strip() != "", "bad config value: model.name must not be empty")
    if m.name == "scratch":
        need(
            m.n_embd % m.n_head == 0,
            f"bad config value: model.n_embd={m.n_embd} must be divisible by model.n_head={m.n_head}",
        )
        need(m.tokenizer is not None, "bad config value: model.name=scratch needs model.tokenizer (e.g. gpt2-bundled)")


def save_config(cfg: Config, path: Path, extra: dict | None = None) -> None:
    """The resolved config, plus what actually ran (model, hardware, plan, versions) under `resolved`."""
    d = cfg.to_dict()
    d["run_name"] = cfg.run_name
    if extra:
        d["resolved"] = extra
    validate.write_atomic(path, yaml.safe_dump(d, sort_keys=False, allow_unicode=True))


def defaults_dict() -> dict:
    return {k: default_of(f) for k, f in all_keys().items()}
