"""C2PA Content Credentials: the signing chain, the signed manifest on every output file, and reading it back.

A manifest binds to the exact bytes of the file (a BMFF hash for MP4/MOV, a data hash for images):
one flipped byte makes it invalid and any re-encode or remux drops it. That is what it is for: it
proves this file is the one the tool wrote; the watermark is what survives when the file is remade.
Everything here is offline: no timestamp authority, no OCSP, no remote manifests.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceswap import TOOL_ID, __version__, log
from faceswap.errors import UserError

logger = log.get("provenance")

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ASSERTION = "org.faceswap.provenance"
KEYS_ENV = "FACESWAP_C2PA_DIR"
CA_CERT, CA_KEY, SIGNER_CERT, SIGNER_KEY = "ca.pem", "ca.key", "signer.pem", "signer.key"
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".tif": "image/tiff",
        ".tiff": "image/tiff", ".avi": "video/avi"}
# Reading and signing never go online: remote manifests and OCSP are off, and no host is allowed.
OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}, "core": {"allowed_network_hosts": []}}
STATES = ("absent", "untrusted", "trusted", "invalid", "unsupported", "remote")


def _c2pa():
    try:
        import c2pa
    except ImportError:  # pragma: no cover - a core dependency; only a broken install lands here
        raise UserError("C2PA signing needs the c2pa-python package: pip install c2pa-python "
                        "(or turn it off with provenance.c2pa=false)") from None
    return c2pa


def keys_dir(setting: Any = "auto") -> Path:
    """Where the local signing chain lives: ``setting`` if a path, else $FACESWAP_C2PA_DIR, else the config folder."""
    if setting not in (None, "", "auto"):
        return Path(str(setting)).expanduser()
    if os.environ.get(KEYS_ENV):
        return Path(os.environ[KEYS_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / TOOL_ID / "c2pa"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# --- the signing chain -------------------------------------------------------------------------------------------

@dataclass
class SigningChain:
    """PEM certificate chain (signer first), its private key, the signing algorithm and where they came from."""

    cert_pem: bytes
    key_pem: bytes
    alg: str = "es256"
    origin: str = "the given chain"
    ca_pem: bytes | None = None  # the local CA (the trust anchor for files this machine signs)


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{TOOL_ID} local signing"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_local_chain() -> dict[str, bytes]:
    """A fresh CA and an ES256 signing certificate it issued, as PEM files {name: bytes}.

    c2pa refuses a self-signed signer, so the signer is a leaf: BasicConstraints(ca=False), critical
    KeyUsage(digitalSignature), SKI/AKI, and an extended key usage the C2PA trust model accepts
    (emailProtection). ES256 = ECDSA P-256 with SHA-256.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)  # clock skew
    host = uuid.uuid4().hex[:8]

    def usage(sign: bool):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(f"{TOOL_ID} local CA {host}"))
          .issuer_name(_name(f"{TOOL_ID} local CA {host}")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=20 * 365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(f"{TOOL_ID} signer {host}")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=5 * 365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM

    def private(k):
        return k.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    ca_pem = ca.public_bytes(pem)
    return {CA_CERT: ca_pem, CA_KEY: private(ca_key), SIGNER_CERT: leaf.public_bytes(pem) + ca_pem,
            SIGNER_KEY: private(key)}


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL + the mode at creation: a private key is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def ensure_local_chain(folder: Path) -> Path:
    """Make the local chain in ``folder`` on first use (atomically: a whole folder or none); returns ``folder``."""
    if (folder / SIGNER_KEY).is_file():
        return folder
    leftover = any(folder.iterdir()) if folder.is_dir() else folder.exists()
    if leftover:
        raise UserError(f"C2PA key folder {folder} exists but holds no {SIGNER_KEY}; move it away (a new chain is "
                        "made) or point provenance.c2pa.keys (or FACESWAP_C2PA_DIR) at a complete one")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))  # mode 0700
    except OSError as exc:
        raise UserError(f"cannot create the C2PA signing keys in {folder} ({exc.strerror}); set "
                        f"provenance.c2pa.keys=DIR (or {KEYS_ENV}) to a writable folder") from None
    try:
        for name, data in make_local_chain().items():
            _write_new(tmp / name, data, 0o600 if name.endswith(".key") else 0o644)
        try:
            os.rename(tmp, folder)  # fails if another process made it first: theirs is as good
        except OSError as exc:
            if not (folder / SIGNER_KEY).is_file():
                raise UserError(f"cannot create the C2PA signing keys in {folder} ({exc.strerror}); set "
                                "provenance.c2pa.keys=DIR to a writable folder") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.warning(f"note: made a local C2PA signing certificate in {folder} (its CA, {folder / CA_CERT}, is the "
                   "trust anchor for 'faceswap verify')")
    return folder


def _alg_of(key_pem: bytes, where: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where} is not an unencrypted PEM private key ({exc}); give the signing key as PEM") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(key.curve.name)
        if alg:
            return alg
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise UserError(f"{where}: C2PA signs with ECDSA P-256/384/521, Ed25519 or RSA-PSS keys; this key is none of them")


def _read_private(path: Path, what: str) -> bytes:
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UserError(f"{what} {path} is readable by others (mode {mode:o}); run 'chmod 600 {path}'")
    return path.read_bytes()


def load_chain(cert: Any = None, key: Any = None, keys: Any = "auto") -> SigningChain:
    """The chain that signs: an organisation's own (``cert``/``key`` PEM files) or the local one, made on first use."""
    from cryptography import x509

    if (cert in (None, "")) != (key in (None, "")):
        raise UserError("provenance.c2pa.cert and provenance.c2pa.key go together: give both (an organisation's "
                        "PEM certificate chain and its private key) or neither (the local chain)")
    if cert not in (None, ""):
        cert_path, key_path = Path(str(cert)).expanduser(), Path(str(key)).expanduser()
        if not cert_path.is_file():
            raise UserError(f"provenance.c2pa.cert={cert_path} does not exist; give a PEM certificate chain")
        cert_pem = cert_path.read_bytes()
        try:
            certs = x509.load_pem_x509_certificates(cert_pem)
        except ValueError:
            raise UserError(f"provenance.c2pa.cert={cert_path} holds no PEM certificate; give the signer's "
                            "certificate followed by its CA certificates") from None
        key_pem = _read_private(key_path, "provenance.c2pa.key")
        alg = _alg_of(key_pem, f"provenance.c2pa.key={key_path}")
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

        spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        if certs[0].public_key().public_bytes(*spki) != load_pem_private_key(key_pem, None).public_key().public_bytes(*spki):
            raise UserError(f"provenance.c2pa.key={key_path} does not belong to the first certificate of "
                            f"{cert_path}; put the signer's own certificate first")
        return SigningChain(cert_pem, key_pem, alg, origin=f"the chain {cert_path}")
    folder = ensure_local_chain(keys_dir(keys))
    key_pem = _read_private(folder / SIGNER_KEY, "C2PA signing key")
    for name in (SIGNER_CERT, CA_CERT):
        if not (folder / name).is_file():
            raise UserError(f"C2PA key folder {folder} has no {name}; move the folder away to make a new chain")
    return SigningChain((folder / SIGNER_CERT).read_bytes(), key_pem, _alg_of(key_pem, str(folder / SIGNER_KEY)),
                        origin=f"the local chain in {folder}", ca_pem=(folder / CA_CERT).read_bytes())


# --- signing ---------------------------------------------------------------------------------------------------------

@dataclass
class ManifestSigner:
    """Signs convert's output files: the same facts for each, a fresh manifest per file."""

    chain: SigningChain
    facts: dict  # run_id, watermark, checkpoint {sha256, step}, direction ...
    record: dict = field(default_factory=lambda: {"signed": 0, "bytes_added": 0, "seconds": 0.0, "skipped": []})

    def manifest(self, title: str, mime: str, source: Path | None) -> dict:
        facts = dict(self.facts)
        ingredients = []
        if source is not None and source.is_file():
            digest = sha256_file(source)
            facts["source"] = {"name": source.name, "sha256": digest}
            fmt = MIME.get(source.suffix.lower(), "application/octet-stream")
            ingredients.append({"title": source.name, "format": fmt, "relationship": "parentOf", "label": "source",
                                "description": f"the performance whose face was replaced (sha256 {digest})",
                                "metadata": {f"{ASSERTION}.sha256": digest}})
        agent = {"name": TOOL_ID, "version": __version__}
        swap = {"action": "c2pa.edited" if ingredients else "c2pa.created",
                "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": agent,
                "description": "a face was replaced by an autoencoder face swap (synthetic media)",
                "parameters": {k: facts[k] for k in ("run_id", "watermark", "checkpoint", "direction") if k in facts}}
        # The first action must be 'created' or 'opened'; 'opened' names the source ingredient.
        opened = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}}] if ingredients else []
        ours = {"synthetic": True, "tool": f"{TOOL_ID}/{__version__}", **facts}
        return {"claim_generator_info": [agent], "title": title, "format": mime, "ingredients": ingredients,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": opened + [swap]}},
                               {"label": ASSERTION, "data": ours}]}

    def sign(self, path: Path, title: str | None = None, source: Path | None = None) -> bool:
        """Embed a signed manifest in ``path`` (replaced atomically); False when its format cannot carry one."""
        c2pa = _c2pa()
        path = Path(path)
        mime = MIME.get(path.suffix.lower())
        if mime is None:
            self.record["skipped"].append(path.name)
            return False
        t0 = time.perf_counter()
        size = path.stat().st_size
        ctx = c2pa.Context.from_dict({**OFFLINE, "builder": {"thumbnail": {"enabled": False}}})
        tmp = path.with_name(f".{path.name}.c2pa-{uuid.uuid4().hex[:8]}{path.suffix}")
        try:
            info = c2pa.C2paSignerInfo(self.chain.alg.encode(), self.chain.cert_pem, self.chain.key_pem, None)
            with c2pa.Signer.from_info(info) as signer, \
                    c2pa.Builder(self.manifest(title or path.name, mime, source), context=ctx) as builder, \
                    open(path, "rb") as src, open(tmp, "w+b") as dst:
                builder.sign(signer, mime, src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except c2pa.C2paError as exc:
            raise UserError(f"C2PA signing of {title or path.name} with {self.chain.origin} failed "
                            f"({_first_line(exc)}); check provenance.c2pa.cert/key, or turn it off with "
                            "provenance.c2pa=false") from None
        finally:
            ctx.close()
            if tmp.exists():
                tmp.unlink()
        self.record["signed"] += 1
        self.record["bytes_added"] += path.stat().st_size - size
        self.record["seconds"] = round(self.record["seconds"] + time.perf_counter() - t0, 4)
        return True

    def __call__(self, target: Path, title: str | None = None, source: Path | None = None) -> None:
        """Sign a file, or every image of a folder (each against the source image of the same name)."""
        target = Path(target)
        if target.is_dir():
            for p in sorted(target.iterdir()):
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() != ".json":
                    self.sign(p, source=(source / p.name) if source is not None and source.is_dir() else None)
        else:
            self.sign(target, title=title, source=source)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[:2]) if text else type(exc).__name__


def c2pa_settings(prov: Any) -> dict | None:
    """``provenance.c2pa`` as a dict (enabled, cert, key, keys), or None when it is turned off."""
    node = prov.get("c2pa", True) if prov is not None else True
    if isinstance(node, bool):
        return {"enabled": True, "cert": None, "key": None, "keys": "auto"} if node else None
    if node is None or not hasattr(node, "get"):
        raise UserError(f"provenance.c2pa={node!r} must be true, false or a group (provenance.c2pa.cert=..., key=...)")
    enabled = node.get("enabled", True)
    if not isinstance(enabled, bool):
        raise UserError(f"provenance.c2pa.enabled={enabled!r} must be true or false")
    if not enabled:
        return None
    return {"enabled": True, "cert": node.get("cert"), "key": node.get("key"), "keys": node.get("keys", "auto")}


def c2pa_signer(cfg: Any, run_id: str, watermark: bool = True, checkpoint: Any = None,
                direction: str | None = None) -> ManifestSigner | None:
    """convert's signer for ``cfg.provenance.c2pa``; prints a WARNING and returns None when it is turned off."""

    settings = c2pa_settings(cfg.get("provenance"))
    if settings is None:
        logger.warning("WARNING: provenance.c2pa=false: the output file carries NO signed C2PA manifest "
                       "(Content Credentials)")
        return None
    chain = load_chain(settings["cert"], settings["key"], settings["keys"])
    facts: dict = {"run_id": run_id}
    if watermark:
        from faceswap.provenance.watermark import TOOL_ID as WATERMARK_TAG
        from faceswap.provenance.watermark import run_tag

        facts["watermark"] = f"{WATERMARK_TAG:02x}:{run_tag(run_id):06x}"  # as the provenance tags write it
    if direction:
        facts["direction"] = direction
    if checkpoint is not None:
        weights = Path(checkpoint.path) / ("ema.safetensors" if checkpoint.weights == "ema" else "model.safetensors")
        facts["checkpoint"] = {"step": checkpoint.step, "weights": checkpoint.weights,
                               "sha256": sha256_file(weights) if weights.is_file() else None}
    return ManifestSigner(chain, facts)


# --- reading back ----------------------------------------------------------------------------------------------------

def trust_anchors(setting: Any = "local", keys: Any = "auto") -> tuple[str, list[str]]:
    """(PEM bundle, where each anchor came from) for ``trust``: local, none, a PEM file, or a list of those."""
    items = [setting] if setting is None or isinstance(setting, str) else list(setting)
    pem, names = [], []
    for item in items:
        item = "none" if item is None else str(item)
        if item == "none":
            continue
        if item == "local":
            ca = keys_dir(keys) / CA_CERT
            if ca.is_file():
                pem.append(ca.read_text())
                names.append(f"local CA {ca}")
            continue
        path = Path(item).expanduser()
        if not path.is_file():
            raise UserError(f"c2pa.trust={item}: no such file; give a PEM file of CA certificates, 'local' or 'none'")
        text = path.read_text(errors="replace")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise UserError(f"c2pa.trust={item} holds no PEM certificate; give the CA certificate(s) to trust")
        pem.append(text)
        names.append(str(path))
    return "\n".join(pem), names


def read_manifest(path: str | os.PathLike, anchors_pem: str = "", anchors: list[str] | None = None) -> dict:
    """The C2PA state of one file: absent, untrusted (valid signature, unknown signer), trusted, invalid,
    unsupported (a format that cannot carry one) or remote (it points to a manifest online, not fetched).

    Also what the active manifest says: signer, generator, actions, digital source type, our own facts,
    ingredients, and the failure codes (a flipped byte in the video shows as ``assertion.bmffHash.mismatch``).
    """
    c2pa = _c2pa()
    path = Path(path)
    out: dict = {"state": "absent", "checked": True, "trust_anchors": list(anchors or [])}
    settings = {**OFFLINE, "verify": {**OFFLINE["verify"], "verify_trust": True}}
    if anchors_pem:
        settings["trust"] = {"user_anchors": anchors_pem}
    ctx = c2pa.Context.from_dict(settings)
    try:
        with open(path, "rb") as fh:
            mime = MIME.get(path.suffix.lower())
            reader = c2pa.Reader.try_create(mime, fh, context=ctx) if mime else c2pa.Reader.try_create(fh, context=ctx)
            if reader is None:
                return out
            with reader:
                state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
                manifest = reader.get_active_manifest() or {}
    except c2pa.C2paError as exc:
        name = type(exc).__name__.lstrip("_") + " " + str(exc).strip()  # the type is not always the specific one
        if "NotSupported" in name:
            out.update(state="unsupported", checked=False, error=_first_line(exc))
        elif "Remote" in name.split(":")[0]:
            # The file points to a manifest on the web; verifying stays offline, so it is not fetched.
            out.update(state="remote", checked=False, error=_first_line(exc))
        else:
            out.update(state="invalid", error=_first_line(exc))
        return out
    finally:
        ctx.close()
    active = results.get("activeManifest", {}) if isinstance(results, dict) else {}
    failures = [f.get("code") for f in active.get("failure", [])]
    if state == "Trusted":
        out["state"] = "trusted"
    elif state == "Valid" and set(failures) <= {"signingCredential.untrusted"}:
        out["state"] = "untrusted"
    else:
        out["state"] = "invalid"
    out["validation_state"] = state
    out["failures"] = failures
    actions, facts = [], {}
    for assertion in manifest.get("assertions", []):
        label = str(assertion.get("label", ""))
        if label.startswith("c2pa.actions"):
            actions += assertion.get("data", {}).get("actions", [])
        elif label == ASSERTION:
            facts = assertion.get("data", {})
    sig = manifest.get("signature_info", {}) or {}
    out.update({
        "signer": {"issuer": sig.get("issuer"), "common_name": sig.get("common_name"), "alg": sig.get("alg")},
        "claim_generator": [g.get("name") for g in manifest.get("claim_generator_info", []) if isinstance(g, dict)],
        "title": manifest.get("title"),
        "actions": [a.get("action") for a in actions],
        "digital_source_types": sorted({a["digitalSourceType"] for a in actions if a.get("digitalSourceType")}),
        "facts": facts,
        "ingredients": [{"title": i.get("title"), "relationship": i.get("relationship"),
                         "sha256": (i.get("metadata") or {}).get(f"{ASSERTION}.sha256")}
                        for i in manifest.get("ingredients", [])],
    })
    out["synthetic"] = bool(facts.get("synthetic")) or DIGITAL_SOURCE_TYPE in out["digital_source_types"]
    return out


def summarise_states(reports: list[dict]) -> dict:
    """One C2PA verdict for an image folder: counts per state and an overall state."""
    from collections import Counter

    counts = Counter(r["state"] for r in reports)
    present = [r for r in reports if r["state"] in ("trusted", "untrusted", "invalid")]
    # Files of a format that cannot carry a manifest (e.g. BMP) neither make nor break the verdict.
    eligible = [r for r in reports if r["state"] not in ("unsupported", "remote")]
    if counts["invalid"]:
        state = "invalid"
    elif not present:
        state = "absent" if eligible or not reports else reports[0]["state"]
    elif len(present) < len(eligible):
        state = "partial"
    elif counts["trusted"] == len(eligible):
        state = "trusted"
    else:
        state = "untrusted"
    first = present[0] if present else (reports[0] if reports else {"state": "absent"})
    out = {k: v for k, v in first.items() if k != "state"}
    out.update(state=state, files=dict(counts), checked=bool(reports),
               synthetic=any(r.get("synthetic") for r in present))
    return out


__all__ = ["DIGITAL_SOURCE_TYPE", "ASSERTION", "KEYS_ENV", "keys_dir", "sha256_file", "SigningChain",
           "make_local_chain", "ensure_local_chain", "load_chain", "ManifestSigner", "c2pa_settings", "c2pa_signer", "trust_anchors",
           "read_manifest", "summarise_states", "STATES"]
