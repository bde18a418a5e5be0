"""external-dns as its own configuration reads it: where it runs, its registry options, and its TXT ownership records.

Shared by the checks (DNS-004, RBAC-004), the collector (which decrypts encrypted ownership records while the AES
key is in hand: the snapshot never holds it) and the sandbox's external-dns model (which writes the records the
way these options say).

- `--registry`: only `txt` keeps ownership in TXT records (`noop`, `dynamodb`, `aws-sd` keep none or elsewhere);
- `--txt-owner-id` (default `default`), `--txt-prefix` / `--txt-suffix` (on the first label of the name; the
  placeholder `%{record_type}` puts the record type where it stands, else external-dns writes `a-` / `cname-`
  before the label: the "new format" of 0.12 on; 0.12-0.17 also write the old, untyped name);
- `--txt-encrypt-enabled` with `--txt-encrypt-aes-key` (32 bytes, plain or base64): the value is the ownership
  text gzipped, sealed with AES-256-GCM under a 12-byte nonce put in front, base64 (standard alphabet), quoted.

Every flag may also come from the environment as `EXTERNAL_DNS_<FLAG>` (kingpin's default env vars); a flag
given on the command line wins.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

EXTERNAL_DNS = "external-dns"
DEFAULT_OWNER_ID = "default"  # external-dns' default --txt-owner-id
RECORD_TYPE = "%{record_type}"
KEY_ENV = "EXTERNAL_DNS_TXT_ENCRYPT_AES_KEY"
NONCE_SIZE = 12  # Go's cipher.NewGCM: the standard GCM nonce
TXT_REGISTRY = "txt"


# -- where it runs ---------------------------------------------------------------------------------------------

def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


def is_external_dns(deployment: dict[str, Any]) -> bool:
    """external-dns by its name (`external-dns`, or `externaldns` as Azure's tutorials call it), its label, its image
    (`registry.k8s.io/external-dns/external-dns`, bitnami's) or an Azure provider flag."""
    meta = deployment.get("metadata") or {}
    name = str(meta.get("name") or "")
    if EXTERNAL_DNS in name or name == "externaldns":
        return True
    if (meta.get("labels") or {}).get("app.kubernetes.io/name") == EXTERNAL_DNS:
        return True
    return any(EXTERNAL_DNS in str(c.get("image") or "") or any(
        str(a).startswith(("--provider=azure", "--provider=azure-private-dns")) for a in c.get("args") or [])
        for c in _containers(deployment))


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The external-dns container: by image, else the one with a --provider flag, else the first."""
    containers = _containers(deployment)
    return (next((c for c in containers if EXTERNAL_DNS in str(c.get("image") or "")), None)
            or next((c for c in containers if any(str(a).startswith("--provider") for a in c.get("args") or [])), None)
            or (containers[0] if containers else {}))


def arguments(deployment: dict[str, Any]) -> list[str]:
    found = container(deployment)
    return [str(a) for a in [*(found.get("command") or []), *(found.get("args") or [])]]


def flag_values(args: list[str], name: str) -> list[str]:
    """Every `--name=value` / `--name value`, in order."""
    found = []
    for index, argument in enumerate(args):
        if argument.startswith(f"--{name}="):
            found.append(argument.split("=", 1)[1])
        elif argument == f"--{name}" and index + 1 < len(args) and not args[index + 1].startswith("--"):
            found.append(args[index + 1])
    return found


def env_name(flag: str) -> str:
    return "EXTERNAL_DNS_" + flag.upper().replace("-", "_")


def _env_literal(deployment: dict[str, Any], name: str) -> str | None:
    for variable in container(deployment).get("env") or []:
        if variable.get("name") == name and "value" in variable:
            return str(variable.get("value"))
    return None


def setting(deployment: dict[str, Any], name: str, default: str) -> str:
    """One flag's value: the command line (the last occurrence wins), else its EXTERNAL_DNS_* variable."""
    values = flag_values(arguments(deployment), name)
    if values:
        return values[-1]
    value = _env_literal(deployment, env_name(name))
    return default if value is None else value


def settings(deployment: dict[str, Any], name: str) -> list[str]:
    """A repeatable flag (`--source`, `--domain-filter`): every occurrence, else the variable's lines."""
    values = flag_values(arguments(deployment), name)
    if values:
        return values
    value = _env_literal(deployment, env_name(name))
    return [v.strip() for v in (value or "").replace(",", "\n").splitlines() if v.strip()]


def switch(deployment: dict[str, Any], name: str) -> bool:
    """A boolean flag as kingpin reads it: `--name`, `--name=true`, `--no-name`; else its variable."""
    state = None
    for argument in arguments(deployment):
        if argument == f"--{name}":
            state = True
        elif argument == f"--no-{name}":
            state = False
        elif argument.startswith(f"--{name}="):
            state = argument.split("=", 1)[1].strip().lower() in ("true", "1", "yes", "on")
    if state is not None:
        return state
    value = _env_literal(deployment, env_name(name))
    return (value or "").strip().lower() in ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Registry:
    """The registry options of one external-dns Deployment."""

    namespace: str
    name: str
    registry: str
    owner: str
    prefix: str
    suffix: str
    wildcard_replacement: str
    encrypted: bool
    provider: str
    domain_filters: tuple[str, ...] = field(default=())
    sources: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def affixes(self) -> str:
        parts = [f"--txt-owner-id={self.owner}"]
        parts += [f"--txt-prefix={self.prefix}"] if self.prefix else []
        parts += [f"--txt-suffix={self.suffix}"] if self.suffix else []
        parts += ["--txt-encrypt-enabled"] if self.encrypted else []
        return " ".join(parts)


def registry_of(deployment: dict[str, Any]) -> Registry:
    meta = deployment.get("metadata") or {}
    return Registry(
        namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
        registry=setting(deployment, "registry", TXT_REGISTRY).strip().lower(),
        owner=setting(deployment, "txt-owner-id", DEFAULT_OWNER_ID),
        prefix=setting(deployment, "txt-prefix", ""), suffix=setting(deployment, "txt-suffix", ""),
        wildcard_replacement=setting(deployment, "txt-wildcard-replacement", ""),
        encrypted=switch(deployment, "txt-encrypt-enabled"),
        provider=setting(deployment, "provider", "").strip().lower(),
        domain_filters=tuple(d.strip().rstrip(".").lower() for d in settings(deployment, "domain-filter") if d.strip()),
        sources=tuple(s.strip().lower() for s in settings(deployment, "source")),
    )


def domain_matches(filters: tuple[str, ...] | list[str], name: str) -> bool:
    """external-dns' --domain-filter: a name matches a filter equal to it or to one of its parent domains (suffix
    match on label boundaries; a filter starting with `.` matches subdomains only); no filter matches everything."""
    name = name.strip().rstrip(".").lower()
    if not filters:
        return True
    for raw in filters:
        domain = raw.strip().rstrip(".").lower()
        if not domain:
            return True
        if domain.startswith("."):
            if name.endswith(domain):
                return True
        elif name == domain or name.endswith("." + domain):
            return True
    return False


# -- the ownership record's name -------------------------------------------------------------------------------

def ownership_names(fqdn: str, registry: Registry, record_types: tuple[str, ...] = ("a", "cname")) -> list[str]:
    """The names (fully qualified, no trailing dot) external-dns gives the ownership TXT records of `fqdn`: per record
    type `prefix + type- + label + suffix` (or the type where `%{record_type}` stands), and the old untyped name."""
    first, _, rest = fqdn.strip().rstrip(".").lower().partition(".")
    if registry.wildcard_replacement and first == "*":
        first = registry.wildcard_replacement.lower()
    prefix, suffix = registry.prefix.lower(), registry.suffix.lower()
    templated = RECORD_TYPE in prefix or RECORD_TYPE in suffix

    def join(label: str) -> str:
        return f"{label}.{rest}" if rest else label

    names = []
    for rtype in record_types:
        label = first if templated else f"{rtype}-{first}"
        names.append(join(prefix.replace(RECORD_TYPE, rtype) + label + suffix.replace(RECORD_TYPE, rtype)))
    names.append(join(prefix.replace(RECORD_TYPE, "") + first + suffix.replace(RECORD_TYPE, "")))
    return [name for name in dict.fromkeys(names) if "" not in name.split(".")]  # no empty label: never a record


def relative(fqdn: str, zone: str) -> str:
    fqdn, zone = fqdn.rstrip(".").lower(), zone.rstrip(".").lower()
    return "@" if fqdn == zone else fqdn.removesuffix("." + zone)


def ownership_text(owner: str, resource: str) -> str:
    """The labels as external-dns serializes them (sorted keys), without quotes."""
    return f"heritage={EXTERNAL_DNS},{EXTERNAL_DNS}/owner={owner},{EXTERNAL_DNS}/resource={resource}"


def ownership_fields(text: str) -> dict[str, str] | None:
    """The fields of a plain ownership value (`"heritage=external-dns,external-dns/owner=x,..."`), or None when it is
    not one (no heritage, or another heritage), as external-dns' label parser decides."""
    text = text.strip().strip('"')
    fields: dict[str, str] = {}
    for token in text.split(","):
        parts = token.split("=")
        if len(parts) != 2:
            continue
        fields[parts[0].strip()] = parts[1].strip()
    return fields if fields.get("heritage") == EXTERNAL_DNS else None


# -- encryption (AES-256-GCM, as endpoint/crypto.go) -----------------------------------------------------------

def aes_key(text: str) -> bytes:
    """The key external-dns uses: the flag's 32 bytes, else their base64 decoding if that is 32 bytes."""
    raw = text.encode("utf-8")
    if len(raw) == 32:
        return raw
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 32:
        raise ValueError(f"the AES key is {len(raw)} bytes, neither 32 bytes nor 32 bytes base64-encoded "
                         "(external-dns refuses to start with it)")
    return decoded


def encrypt(text: str, key: bytes, nonce: bytes | None = None) -> str:
    """`text` gzipped (best compression), sealed under `nonce` (12 random bytes if None) with the nonce in front,
    base64 - without the quotes external-dns puts around a TXT value."""
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"the nonce must be {NONCE_SIZE} bytes")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as stream:
        stream.write(text.encode("utf-8"))
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, buffer.getvalue(), None)).decode("ascii")


def decrypt(value: str, key: bytes) -> str:
    """The plain text of an encrypted value (quotes around it dropped); ValueError when it is not one sealed with
    `key` (not base64, too short, another key, not gzip)."""
    text = value.strip().strip('"')
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    if len(data) <= NONCE_SIZE:
        raise ValueError(f"shorter than the {NONCE_SIZE}-byte nonce")
    try:
        sealed = AESGCM(key).decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], None)
    except InvalidTag as exc:
        raise ValueError("not sealed with this key") from exc
    try:
        return gzip.decompress(sealed).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ValueError("decrypted, but not gzip-compressed text") from exc


def txt_values(record_set: dict[str, Any]) -> list[str]:
    """Each TXT record of an ARM record set, its strings joined (a value over 255 characters comes in chunks)."""
    properties = {str(k).lower(): v for k, v in (record_set.get("properties") or {}).items()}
    values = []
    for item in properties.get("txtrecords") or []:
        chunks = {str(k).lower(): v for k, v in item.items()}.get("value") or []
        values.append("".join(str(chunk) for chunk in chunks))
    return values


# -- the key, at collection time ---------------------------------------------------------------------------------

_KEY_MATERIAL = 96  # characters of a Secret value kept while collecting: a 32-byte key, base64'd twice at most


class OwnershipDecryption:
    """Collects, from the raw objects before they are redacted, what decrypting external-dns' ownership records
    needs (the AES key of each Deployment with --txt-encrypt-enabled, and small Secret values it may reference),
    then decrypts the zone's TXT records. Only the decrypted ownership text goes into the snapshot, never a key."""

    def __init__(self, read_secrets: bool) -> None:
        self.read_secrets = read_secrets
        self._secrets: dict[tuple[str, str], dict[str, str]] = {}
        self._deployments: list[tuple[str, dict[str, Any]]] = []

    def see(self, kind: str, raw: dict[str, Any]) -> None:
        """One raw (unredacted) object as listed; keeps only what is needed."""
        if kind == "Secret":
            meta = raw.get("metadata") or {}
            small = {k: v for k, v in (raw.get("data") or {}).items() if isinstance(v, str) and len(v) <= _KEY_MATERIAL}
            if small:
                self._secrets[(str(meta.get("namespace")), str(meta.get("name")))] = small
        elif kind == "Deployment" and is_external_dns(raw) and switch(raw, "txt-encrypt-enabled"):
            meta = raw.get("metadata") or {}
            self._deployments.append((f"{meta.get('namespace')}/{meta.get('name')}", _key_spec(raw)))

    def _secret_value(self, namespace: str, name: str, item: str) -> str | None:
        return (self._secrets.get((namespace, name)) or {}).get(item)

    def entry(self, azure: dict[str, Any]) -> dict[str, Any]:
        """The snapshot entry: per Deployment where its key is and whether it was usable, and per TXT record set that
        holds values not readable as plain ownership text, each value decrypted (or null where it does not decrypt)."""
        keys: dict[str, dict[str, Any]] = {}
        records: list[dict[str, Any]] = []
        listed = azure.get("recordSets") or {}
        record_sets = (listed.get("value") or []) if listed.get("status") == "ok" else []
        for ref, spec in self._deployments:
            key, where, reason = resolve_key(ref.split("/", 1)[0], spec,
                                             self._secret_value if self.read_secrets else None)
            keys[ref] = {"key": where, "readable": key is not None, "reason": reason}
            if key is None:
                continue
            for record_set in record_sets:
                if not str(record_set.get("type", "")).lower().endswith("/txt"):
                    continue
                values = txt_values(record_set)
                if all(ownership_fields(v) is not None for v in values):
                    continue
                decrypted: list[str | None] = []
                for value in values:
                    try:
                        decrypted.append(decrypt(value, key))
                    except ValueError:
                        decrypted.append(None)
                if any(d is not None for d in decrypted) or any(_looks_encrypted(v) for v in values):
                    records.append({"id": record_set.get("id"), "deployment": ref, "decrypted": decrypted})
        return {"status": "ok", "value": {"keys": keys, "records": records}, "reason": None}


def key_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    """Where an external-dns Deployment's AES key is (see `resolve_key`)."""
    return _key_spec(deployment)


def resolve_key(namespace: str, spec: dict[str, Any], secret_value: Callable[[str, str, str], str | None] | None,
                ) -> tuple[bytes | None, str, str | None]:
    """(key, where it is, why it cannot be used). `secret_value(namespace, name, key)` gives a Secret's `data` value
    (base64), None when absent; `secret_value` None: Secrets are not read."""
    if spec.get("literal") is not None:
        try:
            return aes_key(spec["literal"]), spec["where"], None
        except ValueError as exc:
            return None, spec["where"], str(exc)
    secret = spec.get("secret")
    if secret is None:
        return None, spec.get("where", "nowhere"), spec.get("reason") or (
            f"no AES key is configured (--txt-encrypt-aes-key or {KEY_ENV})")
    name, item = secret
    where = f"Secret {namespace}/{name} (key {item})"
    if secret_value is None:
        return None, where, f"Secret {namespace}/{name} is not read without --aksid-read-secrets"
    data = secret_value(namespace, name, item)
    if data is None:
        return None, where, f"Secret {namespace}/{name} holds no key {item} (or none the size of an AES key)"
    try:
        return aes_key(base64.b64decode(data).decode("utf-8")), where, None
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        return None, where, str(exc)


def _looks_encrypted(value: str) -> bool:
    text = value.strip().strip('"')
    try:
        return len(base64.b64decode(text, validate=True)) > NONCE_SIZE + 16
    except (binascii.Error, ValueError):
        return False


def _key_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    """Where the Deployment's AES key is: literally in its args or env, in a Secret (env valueFrom / envFrom)."""
    args = flag_values(arguments(deployment), "txt-encrypt-aes-key")
    if args:
        return {"literal": args[-1], "where": "--txt-encrypt-aes-key in its args"}
    found = container(deployment)
    for variable in found.get("env") or []:
        if variable.get("name") != KEY_ENV:
            continue
        if "value" in variable:
            return {"literal": str(variable.get("value")), "where": f"env {KEY_ENV}"}
        reference = ((variable.get("valueFrom") or {}).get("secretKeyRef")) or {}
        if reference.get("name") and reference.get("key"):
            return {"secret": (str(reference["name"]), str(reference["key"]))}
        return {"where": f"env {KEY_ENV}", "reason": f"env {KEY_ENV} takes its value from somewhere aksid does not read"}
    for source in found.get("envFrom") or []:
        name = (source.get("secretRef") or {}).get("name")
        prefix = str(source.get("prefix") or "")
        if name and KEY_ENV.startswith(prefix):  # the variable is the prefix followed by the Secret's key
            return {"secret": (str(name), KEY_ENV.removeprefix(prefix))}
    if found.get("envFrom"):
        return {"where": "envFrom", "reason": "the key may come from a ConfigMap named in envFrom, which aksid does not read"}
    return {"where": "nowhere", "reason": "no AES key is configured (--txt-encrypt-aes-key or "
                                          f"{KEY_ENV}): external-dns refuses to start"}
