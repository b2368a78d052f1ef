"""Policies: the YAML schema, loading with ``extends``, and validation errors that name file and line.

A policy says what to do with each entity type (block / redact / warn / allow, above a minimum
score), which values are never flagged, which AI services it covers and at which destination tier,
and which extra recognizers an author declared in YAML. A bad policy never loads half-way: every
problem raises ``PolicyError`` with the file, the line and the offending key.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

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


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file, the line and the problem."""

    def __init__(self, path: Path | str, problem: str, location: str = "", line: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.location = location
        self.line = line
        where = self.path + (f":{line}" if line else "")
        super().__init__(f"{where}: {location + ': ' if location else ''}{problem}")


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


# ---------------------------------------------------------------- the resolved policy

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
    """Load, merge (``extends``) and validate a policy file; ``None`` means the bundled default."""
    path = Path(path) if path is not None else DEFAULT_POLICY
    if not path.is_file():
        raise PolicyError(path, "no such policy file")
    chain = _load_chain(path, seen=())
    merged = _merge(chain)
    known = set(BUILTIN_ENTITIES) | {r.supported_entity for r in merged.recognizers}
    _check_entity_names(path, merged, known)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p, _ in chain)).hexdigest()[:10]
    version = f"{merged.version or '0'}+{digest}"
    return Policy(
        name=merged.name or path.stem,
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
    )


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


def _load_chain(path: Path, seen: tuple[Path, ...]) -> list[tuple[Path, PolicyDocument]]:
    """The file and its ancestors, root first."""
    resolved = path.resolve()
    if resolved in seen:
        raise PolicyError(path, "extends forms a cycle: " + " -> ".join(str(p) for p in (*seen, resolved)))
    document = _parse_file(path)
    chain: list[tuple[Path, PolicyDocument]] = []
    if document.extends:
        parent = _resolve_extends(document.extends, path)
        if not parent.is_file():
            raise PolicyError(path, f"extends {document.extends!r}: no such policy ({parent})", "extends")
        chain = _load_chain(parent, (*seen, resolved))
    chain.append((path, document))
    return chain


def _parse_file(path: Path) -> PolicyDocument:
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
    try:
        return PolicyDocument.model_validate(_plain(data))
    except ValidationError as e:
        # An unknown key explains a "missing" one next to it (a typo), so report it first.
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
        first = errors[0]
        loc = tuple(part for part in first["loc"] if part != "[key]")
        location = _format_loc(loc)
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r} (a typo?)"
        elif first["type"] in ("literal_error", "enum"):
            message += f"; got {first['input']!r}"
            if first["loc"][-1] == "[key]":
                message = f"unknown {str(loc[0]).rstrip('s')} {loc[-1]!r}; " + first["msg"]
        more = f" (and {len(e.errors()) - 1} more problem(s))" if len(e.errors()) > 1 else ""
        raise PolicyError(path, message + more, location, _line_of(data, loc)) from None


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
        )
    return merged


def _merge_by_name(base: tuple[Any, ...], override: tuple[Any, ...]) -> tuple[Any, ...]:
    by_name = {item.name: item for item in base}
    for item in override:
        by_name[item.name] = item
    return tuple(by_name.values())


def _check_entity_names(path: Path, doc: PolicyDocument, known: set[str]) -> None:
    def check(entity: str, location: str) -> None:
        if entity != "*" and entity not in known:
            raise PolicyError(
                path, f"unknown entity type {entity!r}; known: {', '.join(sorted(known))}", location
            )

    for entity in doc.entities:
        check(entity, f"entities.{entity}")
    for entity in doc.allow_list:
        check(entity, f"allow_list.{entity}")
    for service in doc.services:
        for entity in service.allow_list:
            check(entity, f"services.{service.name}.allow_list.{entity}")
    for tier_name, tier in doc.tiers.items():
        for entity in tier.entities:
            check(entity, f"tiers.{tier_name}.entities.{entity}")
    for i, example in enumerate(doc.examples):
        for entity in example.expect_entities or ():
            check(entity, f"examples[{i}].expect_entities")
        for entity in example.expect_allowed or ():
            check(entity, f"examples[{i}].expect_allowed")
