"""Policies: the YAML schema, loading with ``extends``, and validation errors that name file and line.

A policy says what to do with each entity type (block / redact / warn / allow, above a minimum
score), which values are never flagged, which AI services it covers and at which destination tier,
and which extra recognizers an author declared in YAML. A bad policy never loads half-way: every
problem raises ``PolicyError`` with the file, the line and the offending key.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from guard.verdict import ClassificationLevel, Decision
from recognizers import BUILTIN_ENTITIES

# The bundled policies: policies/ at the top of the source tree, reached through the package's
# bundled_policies link, so an installed wheel (which carries the files) finds them the same way.
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled_policies"
DEFAULT_POLICY = BUNDLED_DIR / "default.yaml"
ENTITY_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
VALIDATOR_NAMES = ("tw_national_id", "tw_resident_id", "tw_ubn", "luhn")


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file: where (file, line, key path) and what."""

    path: str
    problem: str
    location: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.path + (f":{self.line}" if self.line else "")
        return f"{where}: {self.location + ': ' if self.location else ''}{self.problem}"


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file, the line and the problem.

    Every problem found is reported at once, one per line (``problems``); ``path``, ``problem``,
    ``location`` and ``line`` are those of the first.
    """

    def __init__(self, path: Path | str, problem: str, location: str = "", line: int | None = None,
                 more: Sequence[PolicyProblem] = ()):
        first = PolicyProblem(str(path), problem, location, line)
        self.problems: tuple[PolicyProblem, ...] = (first, *more)
        self.path, self.problem, self.location, self.line = first.path, problem, location, line
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def of(cls, problems: Sequence[PolicyProblem]) -> PolicyError:
        first, *more = problems
        return cls(first.path, first.problem, first.location, first.line, more)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'allow_list'?`` for a near miss, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and word.upper() != word:
        close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------- schema (pydantic, strict keys)

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Action = Literal["allow", "warn", "redact", "block"]


class EntityRule(_Strict):
    action: Action
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    guideline_point: int | None = Field(None, ge=1, le=10)


class PatternSpec(_Strict):
    name: str
    regex: str
    score: float = Field(ge=0.0, le=1.0)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"regex does not compile: {e}") from None
        return value


class RecognizerSpec(_Strict):
    """A recognizer declared in YAML, in the shape of Presidio's recognizer registry."""

    name: str
    supported_entity: str
    supported_language: str = "zh"
    enabled: bool = True
    patterns: tuple[PatternSpec, ...] = ()
    context: tuple[str, ...] = ()
    deny_list: tuple[str, ...] = ()
    deny_list_score: float = Field(1.0, ge=0.0, le=1.0)
    validator: str | None = None
    description: str = ""
    # What staff are told the entity is (Traditional Chinese), in notices and the console.
    display_name: str = ""

    @field_validator("supported_entity")
    @classmethod
    def _entity_name(cls, value: str) -> str:
        if not ENTITY_NAME.match(value):
            raise ValueError("entity names are UPPER_SNAKE_CASE, e.g. TW_CASE_NUMBER")
        return value

    @field_validator("validator")
    @classmethod
    def _known_validator(cls, value: str | None) -> str | None:
        if value is not None and value not in VALIDATOR_NAMES:
            raise ValueError(f"unknown validator {value!r}; choose one of {', '.join(VALIDATOR_NAMES)}")
        return value

    @model_validator(mode="after")
    def _has_something_to_match(self) -> RecognizerSpec:
        # A disabled entry may be just a name: it switches off an inherited recognizer.
        if self.enabled and not self.patterns and not self.deny_list:
            raise ValueError("a recognizer needs patterns or a deny_list")
        return self


class TierSpec(_Strict):
    """Rules for one destination tier; ``entities`` override the policy-wide rules."""

    max_classification: str | None = None
    entities: dict[str, EntityRule] = {}
    description: str = ""

    @field_validator("max_classification")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        if value is not None:
            ClassificationLevel.parse(value)
        return value


class ServiceSpec(_Strict):
    name: str
    hosts: tuple[str, ...] = Field(min_length=1)
    api: str = "generic"
    tier: Literal["external", "approved_onprem"] = "external"
    fail_mode: Literal["closed", "open"] = "closed"
    unreadable_upload: Literal["block", "allow"] = "block"
    # Values never flagged for this service only (e.g. the agency's own on-prem model's test accounts).
    allow_list: dict[str, tuple[str, ...]] = {}
    description: str = ""

    @field_validator("hosts")
    @classmethod
    def _host_shapes(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not re.fullmatch(r"(\*\.)?[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9a-fA-F:]+\](:\d{1,5})?", host):
                raise ValueError(f"not a host or host:port: {host!r}")
        return tuple(h.lower() for h in hosts)


class ExampleCase(_Strict):
    """One case ``guard policy test`` runs: a text, where it goes, and what the policy must do.

    ``expect_entities`` are the types the policy acts on (warn, redact, block); ``expect_allowed``
    the types a recognizer found but the policy let through (allow-listed, allowed by the rule or
    the tier, a classification within the tier). Either one, when given, must match exactly.
    """

    text: str
    destination: str | None = None
    tier: Literal["external", "approved_onprem"] | None = None
    expect_decision: Action
    expect_entities: tuple[str, ...] | None = None
    expect_allowed: tuple[str, ...] | None = None
    note: str = ""

    @model_validator(mode="after")
    def _one_way_to_name_the_tier(self) -> ExampleCase:
        if self.destination and self.tier:
            raise ValueError("give destination (a host) or tier, not both")
        return self


class ImageRules(_Strict):
    """What happens to an image (screenshot, photo, scanned page) whose text holds personal data.

    ``mask`` (the default) blacks out the values the policy redacts and forwards the rest of the
    image; ``block`` stops the request, as for a classified image. Either way a classification
    marking blocks, an unreadable image follows the service's ``unreadable_upload`` rule, and a
    clean image passes untouched.
    """

    personal_data: Literal["mask", "block"] = "mask"
    description: str = ""


class PolicyDocument(_Strict):
    """One YAML file, before ``extends`` is resolved."""

    name: str | None = None
    version: str | None = None
    description: str = ""
    extends: str | None = None
    default_action: Action | None = None
    entities: dict[str, EntityRule] = {}
    allow_list: dict[str, tuple[str, ...]] = {}
    tiers: dict[Literal["external", "approved_onprem"], TierSpec] = {}
    services: tuple[ServiceSpec, ...] = ()
    recognizers: tuple[RecognizerSpec, ...] = ()
    examples: tuple[ExampleCase, ...] = ()
    # Traditional Chinese names of entity types for notices, e.g. {CRIMINAL_RECORD: 前科紀錄}.
    display_names: dict[str, str] = {}
    images: ImageRules | None = None


# ---------------------------------------------------------------- the resolved policy

_REMEMBERED_HOSTS = 4096  # (host, port) -> service answers a policy keeps


@dataclass(frozen=True)
class Policy:
    """A loaded, merged, validated policy, ready for the engine."""

    name: str
    version: str
    source: str
    description: str
    default_action: Decision
    entities: Mapping[str, EntityRule]
    allow_list: Mapping[str, frozenset[str]]
    tiers: Mapping[str, TierSpec]
    services: tuple[ServiceSpec, ...]
    recognizers: tuple[RecognizerSpec, ...]
    examples: tuple[ExampleCase, ...]
    # Entity type -> Traditional Chinese name, from the policy's recognizers and display_names.
    display_names: Mapping[str, str] = field(default_factory=dict)
    images: ImageRules = field(default_factory=ImageRules)

    def display_name(self, entity_type: str) -> str | None:
        """What staff are told an entity type is: the policy's name for it, else the built-in one."""
        from guard.notice import ENTITY_NAMES_ZH

        return self.display_names.get(entity_type) or ENTITY_NAMES_ZH.get(entity_type)

    def rule_for(self, entity_type: str, tier: str) -> EntityRule:
        """The rule an entity falls under at a destination tier."""
        tier_spec = self.tiers.get(tier)
        if tier_spec and entity_type in tier_spec.entities:
            return tier_spec.entities[entity_type]
        if entity_type in self.entities:
            return self.entities[entity_type]
        return EntityRule(action=self.default_action.value)

    def rule_source(self, entity_type: str, tier: str) -> str:
        """Where ``rule_for`` found the rule, as a policy key path (for ``guard explain``)."""
        tier_spec = self.tiers.get(tier)
        if tier_spec and entity_type in tier_spec.entities:
            return f"tiers.{tier}.entities.{entity_type}"
        if entity_type in self.entities:
            return f"entities.{entity_type}"
        return "default_action"

    def service_for_host(self, host: str, port: int | None = None) -> ServiceSpec | None:
        """The catalogued AI service for a request host (``host:port`` entries match that port only)."""
        # Remembered: a request asks several times (tunnel, SNI, Host, :authority), and a host after a
        # hundred catalogue entries costs a scan of them all. Bounded: any client may name any host.
        answers = self._service_answers
        key = (host, port)
        if key in answers:
            return answers[key]
        found = self._catalogued(host, port)
        if len(answers) >= _REMEMBERED_HOSTS:
            answers.clear()
        answers[key] = found
        return found

    @functools.cached_property
    def _service_answers(self) -> dict[tuple[str, int | None], ServiceSpec | None]:
        return {}

    def _catalogued(self, host: str, port: int | None) -> ServiceSpec | None:
        host = host.lower().rstrip(".")
        for name, want_port, service in self._host_patterns:
            if want_port is not None and want_port != port:
                continue
            if name == host or (name.startswith("*.") and (host.endswith(name[1:]) or host == name[2:])):
                return service
        return None

    @functools.cached_property
    def _host_patterns(self) -> tuple[tuple[str, int | None, ServiceSpec], ...]:
        """The catalogue's host entries, parsed once (every proxied connection and request looks here)."""
        return tuple((*split_host_port(pattern), service)
                     for service in self.services for pattern in service.hosts)

    def tier_for_destination(self, destination: str | None) -> str:
        """The tier of a destination given as ``host`` or ``host:port``; unknown hosts are external."""
        if not destination:
            return "external"
        service = self.service_for_host(*split_host_port(destination))
        return service.tier if service else "external"

    def max_classification(self, tier: str) -> ClassificationLevel:
        spec = self.tiers.get(tier)
        if spec and spec.max_classification:
            return ClassificationLevel.parse(spec.max_classification)
        return ClassificationLevel.NONE


def split_host_port(value: str) -> tuple[str, int | None]:
    """'host' -> (host, None); 'host:443' -> (host, 443); '[::1]:8080' -> ('[::1]', 8080)."""
    match = re.fullmatch(r"(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?", value.strip().lower())
    if not match:
        return value.strip().lower(), None
    return match.group(1), int(match.group(2)) if match.group(2) else None


# ---------------------------------------------------------------- loading

def load_policy(path: str | Path | None = None) -> Policy:
    """Load, merge (``extends``) and check a policy file; ``None`` means the bundled default.

    A bundled policy may be named instead of a path (``default``, ``sensitive-cases``). Every check
    the proxy runs happens here, so ``guard policy validate`` refuses whatever the proxy would.
    """
    path = resolve_policy_path(path)
    if not path.is_file():
        raise PolicyError(path, "no such policy file" + _bundled_hint(path))
    chain = _load_chain(path, seen=())
    merged = _merge([(p, document) for p, document, _ in chain])
    digest = hashlib.sha256(b"".join(p.read_bytes() for p, _, _ in chain)).hexdigest()[:10]
    version = f"{merged.version or '0'}+{digest}"
    display_names = {r.supported_entity: r.display_name for r in merged.recognizers if r.display_name}
    display_names.update(merged.display_names)
    return Policy(
        # A child's own name, else its file's: a child of default never reports itself as "default".
        name=chain[-1][1].name or path.stem,
        version=version,
        source=str(path),
        description=merged.description,
        default_action=Decision(merged.default_action or "allow"),
        entities=dict(merged.entities),
        allow_list={k: frozenset(_allow_key(v) for v in vs) for k, vs in merged.allow_list.items()},
        tiers={str(name): tier for name, tier in merged.tiers.items()},
        services=merged.services,
        recognizers=tuple(r for r in merged.recognizers if r.enabled),
        examples=chain[-1][1].examples,
        display_names=display_names,
        images=merged.images or ImageRules(),
    )


def bundled_policies() -> tuple[str, ...]:
    """The names of the policies shipped with guard (``default``, ...)."""
    return tuple(sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml")))


def resolve_policy_path(value: str | Path | None) -> Path:
    """A policy argument as a file: ``None`` is the bundled default, a bundled name its file."""
    if value is None:
        return DEFAULT_POLICY
    path = Path(value)
    if not path.exists() and str(value) in bundled_policies():
        return BUNDLED_DIR / f"{value}.yaml"
    return path


def _bundled_hint(path: Path) -> str:
    return f" (bundled policies by name: {', '.join(bundled_policies())})" if "/" not in str(path) else ""


@functools.lru_cache(maxsize=4096)
def _allow_key(value: str) -> str:
    """Comparison key for one value: folded, upper-case, without gaps or brackets.

    So '（02）2311 3456' matches an allow-list entry '02-2311-3456', and the same person's ID typed
    twice in different ways gets one placeholder.
    """
    from recognizers.text import compact, fold

    return _BRACKETS.sub("", compact(fold(value)))


_BRACKETS = re.compile(r"[()\[\]]")


allow_key = _allow_key


def _resolve_extends(name: str, relative_to: Path) -> Path:
    """``default`` and the other bundled policies by name; anything else relative to the file."""
    if name == "default":
        return DEFAULT_POLICY
    candidate = (relative_to.parent / name).resolve()
    if candidate.suffix not in (".yaml", ".yml"):
        candidate = candidate.with_suffix(".yaml")
    bundled = BUNDLED_DIR / f"{name}.yaml"
    if not candidate.is_file() and "/" not in name and bundled.is_file():
        return bundled  # e.g. "extends: sensitive-cases" from an agency's own directory
    return candidate


# A policy file and its ancestors, root first: (path, parsed document, round-trip YAML for line numbers).
Chain = list[tuple[Path, PolicyDocument, Any]]


def _load_chain(path: Path, seen: tuple[Path, ...]) -> Chain:
    """The file and its ancestors, root first, each with its round-trip YAML (for line numbers).

    Every problem of a file is reported at once: schema errors and unknown names together.
    """
    resolved = path.resolve()
    if resolved in seen:
        raise PolicyError(path, "extends forms a cycle: " + " -> ".join(str(p) for p in (*seen, resolved)))
    data = _read_yaml(path)
    plain = _plain(data)
    chain: Chain = []
    extends = plain.get("extends")
    if isinstance(extends, str) and extends:
        parent = _resolve_extends(extends, path)
        if not parent.is_file():
            raise PolicyError(path, f"no such policy ({parent}); bundled policies by name: "
                              f"{', '.join(bundled_policies())}", "extends", _line_of(data, ("extends",)))
        chain = _load_chain(parent, (*seen, resolved))
    known = set(BUILTIN_ENTITIES) | {r.supported_entity for _, doc, _ in chain for r in doc.recognizers}
    known |= {r["supported_entity"] for r in _items(plain.get("recognizers"))
              if isinstance(r.get("supported_entity"), str)}
    problems = _check_names(path, plain, data, known)
    try:
        document = PolicyDocument.model_validate(plain)
    except ValidationError as e:
        problems = _schema_problems(path, data, e.errors()) + problems
    if problems:
        raise PolicyError.of(sorted(problems, key=lambda p: p.line or 0))
    chain.append((path, document, data))
    return chain


def _read_yaml(path: Path) -> Any:
    """The file as round-trip YAML (which knows every node's line): a mapping, or PolicyError."""
    yaml = YAML(typ="rt")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(path, f"cannot read: {e}") from None
    try:
        data = yaml.load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(path, f"not valid YAML: {getattr(e, 'problem', None) or e}", line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise PolicyError(path, "a policy is a mapping of keys (name, entities, services, ...)", line=1)
    return data


def _schema_problems(path: Path, data: Any, errors: Sequence[Any]) -> list[PolicyProblem]:
    """Every schema error as a problem with its line; a misspelt key is reported once, with a hint."""
    misspelt: dict[tuple[Any, ...], list[str]] = {}  # parent location -> unknown keys there
    for error in errors:
        if error["type"] == "extra_forbidden":
            misspelt.setdefault(tuple(error["loc"][:-1]), []).append(str(error["loc"][-1]))
    problems = []
    for error in errors:
        raw_loc = tuple(error["loc"])
        loc = tuple(part for part in raw_loc if part != "[key]")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing" and raw_loc[:-1] in misspelt and difflib.get_close_matches(
                str(raw_loc[-1]), misspelt[raw_loc[:-1]], n=1, cutoff=0.6):
            continue  # "action missing" beside "unknown key acton": the typo says it all
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" + (did_you_mean(str(loc[-1]), _schema_keys(loc[:-1]))
                                                    or f"; allowed here: {', '.join(_schema_keys(loc[:-1]))}")
        elif error["type"] in ("literal_error", "enum"):
            message += f"; got {error['input']!r}"
            if raw_loc[-1] == "[key]":
                message = f"unknown {str(loc[0]).rstrip('s')} {loc[-1]!r}; " + error["msg"]
        problems.append(PolicyProblem(str(path), message, _format_loc(loc), _line_of(data, loc)))
    return problems


def _schema_keys(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys the schema allows in the mapping at ``loc`` (for "did you mean" hints)."""
    annotation: Any = PolicyDocument
    for part in loc:
        annotation = _without_none(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model_field = annotation.model_fields.get(str(part))
            if model_field is None:
                return ()
            annotation = model_field.annotation
        elif get_origin(annotation) in (tuple, list) and get_args(annotation):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict and len(get_args(annotation)) == 2:
            annotation = get_args(annotation)[1]
        else:
            return ()
    annotation = _without_none(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return tuple(annotation.model_fields)
    return ()


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def example_lines(path: str | Path) -> list[int | None]:
    """The 1-based line of each entry of a policy file's ``examples`` (for ``guard policy test``)."""
    try:
        data = YAML(typ="rt").load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError):
        return []
    examples = data.get("examples") if isinstance(data, Mapping) else None
    if not isinstance(examples, list):
        return []
    return [_line_of(data, ("examples", i)) for i in range(len(examples))]


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers to plain dicts and lists (pydantic wants plain types)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node of ``loc`` that exists in the round-trip document."""
    line = None
    node = data
    for part in loc:
        try:
            if isinstance(node, Mapping) and part in node:
                line = cast(Any, node).lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                line = cast(Any, node).lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (AttributeError, KeyError, TypeError):
            break
    return line


def _merge(chain: list[tuple[Path, PolicyDocument]]) -> PolicyDocument:
    """Child overrides parent: scalar keys replace, mappings merge by key, lists merge by name."""
    merged = chain[0][1]
    for _, child in chain[1:]:
        tiers = dict(merged.tiers)
        for name, tier in child.tiers.items():
            base = tiers.get(name)
            tiers[name] = tier if base is None else TierSpec(
                max_classification=tier.max_classification or base.max_classification,
                entities={**base.entities, **tier.entities},
                description=tier.description or base.description,
            )
        allow = {k: tuple(v) for k, v in merged.allow_list.items()}
        for entity, values in child.allow_list.items():
            allow[entity] = tuple(dict.fromkeys((*allow.get(entity, ()), *values)))
        merged = PolicyDocument(
            name=child.name or merged.name,
            version=child.version or merged.version,
            description=child.description or merged.description,
            default_action=child.default_action or merged.default_action,
            entities={**merged.entities, **child.entities},
            allow_list=allow,
            tiers=tiers,
            services=_merge_by_name(merged.services, child.services),
            recognizers=_merge_by_name(merged.recognizers, child.recognizers),
            examples=child.examples,
            display_names={**merged.display_names, **child.display_names},
            images=child.images or merged.images,
        )
    return merged


def _merge_by_name(base: tuple[Any, ...], override: tuple[Any, ...]) -> tuple[Any, ...]:
    by_name = {item.name: item for item in base}
    for item in override:
        by_name[item.name] = item
    return tuple(by_name.values())


def _items(value: Any) -> list[dict[str, Any]]:
    """The mappings of a list in a plain document (anything else is the schema's to report)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _keys(value: Any) -> list[str]:
    return list(value) if isinstance(value, dict) else []


def _check_names(path: Path, plain: dict[str, Any], data: Any, known: set[str]) -> list[PolicyProblem]:
    """Entity types and request formats one file names, each unknown one a problem with its line.

    Works on the plain document, so names are checked even when the schema finds other problems.
    """
    from guard.formats.registry import FORMATS  # the proxy's own table of formats: one source of truth

    problems = []

    def check(name: Any, loc: tuple[Any, ...], choices: Iterable[str], what: str, shown: str = "") -> None:
        choices = sorted(choices)
        if isinstance(name, str) and name != "*" and name not in choices:
            message = f"unknown {what} {name!r}{did_you_mean(name, choices)}; valid: {', '.join(choices)}"
            problems.append(PolicyProblem(str(path), message, shown or _format_loc(loc), _line_of(data, loc)))

    for key in ("entities", "allow_list", "display_names"):
        for entity in _keys(plain.get(key)):
            check(entity, (key, entity), known, "entity type")
    for i, service in enumerate(_items(plain.get("services"))):
        # Services are found by name in a long catalogue: say which one, as well as the line.
        where = f"services.{service['name']}" if isinstance(service.get("name"), str) else f"services[{i}]"
        check(service.get("api"), ("services", i, "api"), FORMATS, "api", f"{where}.api")
        for entity in _keys(service.get("allow_list")):
            check(entity, ("services", i, "allow_list", entity), known, "entity type",
                  f"{where}.allow_list.{entity}")
    tiers = plain.get("tiers")
    for tier_name, tier in (tiers.items() if isinstance(tiers, dict) else ()):
        for entity in _keys(tier.get("entities") if isinstance(tier, dict) else None):
            check(entity, ("tiers", tier_name, "entities", entity), known, "entity type")
    for i, example in enumerate(_items(plain.get("examples"))):
        for key in ("expect_entities", "expect_allowed"):
            value = example.get(key)
            for entity in value if isinstance(value, list) else ():
                check(entity, ("examples", i, key), known, "entity type")
    return problems
