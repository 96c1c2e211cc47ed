"""C2PA manifests: the local chain, sign and read back, tamper, remux, trust anchors, offline, verify's exit codes."""
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
from omegaconf import OmegaConf

from faceswap.cli import main
from faceswap.errors import UserError
from faceswap.provenance import stamp_frame, verify_file
from faceswap.provenance import content_credentials as cc
from faceswap.provenance.watermark import run_tag
from faceswap.video import VideoWriter, ffmpeg_exe, read_video, write_image

RUN = "run-c2pa-test"
FACTS = {"run_id": RUN, "watermark": f"f5:{run_tag(RUN):06x}", "checkpoint": {"sha256": "ab" * 32, "step": 7}}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return tmp_path_factory.mktemp("keys") / "local"


@pytest.fixture(scope="module")
def signer(keys):
    return cc.ManifestSigner(cc.load_chain(keys=keys), dict(FACTS))


@pytest.fixture(scope="module")
def source(tmp_path_factory, photo_clip):
    path = tmp_path_factory.mktemp("src") / "B.mp4"
    with VideoWriter(path, fps=25) as w:
        for f in photo_clip:
            w.write(f)
    return path


@pytest.fixture(scope="module")
def signed(tmp_path_factory, photo_clip, signer, source):
    """A stamped video signed the way convert signs it: the temp file, before the rename."""
    path = tmp_path_factory.mktemp("signed") / "out.mp4"
    w = VideoWriter(path, fps=25)
    for f in photo_clip:
        w.write(stamp_frame(f, RUN))
    seen = []

    def hook(tmp):
        seen.append((tmp, path.exists()))
        signer(tmp, title=path.name, source=source)

    w.close(before_rename=hook)
    assert seen and seen[0][0] != path and not seen[0][1]  # signed before the final name existed
    return path


def _boxes(data: bytes):
    i, out = 0, {}
    while i < len(data):
        size, kind = struct.unpack(">I4s", data[i:i + 8])
        size = struct.unpack(">Q", data[i + 8:i + 16])[0] if size == 1 else size
        out.setdefault(kind.decode("latin-1"), (i, size))
        i += size
    return out


# --- keys ------------------------------------------------------------------------------------------------------------

def test_local_chain_is_private_and_reused(keys, signer):
    from cryptography import x509

    umask = os.umask(0)
    os.umask(umask)
    assert oct(keys.stat().st_mode & 0o777) == oct(0o700)
    for name, mode in (("ca.key", 0o600), ("signer.key", 0o600), ("ca.pem", 0o644 & ~umask), ("signer.pem", 0o644 & ~umask)):
        assert oct((keys / name).stat().st_mode & 0o777) == oct(mode), name
    before = (keys / "signer.key").read_bytes()
    assert cc.load_chain(keys=keys).key_pem == before  # made once, then reused
    leaf, ca = x509.load_pem_x509_certificates((keys / "signer.pem").read_bytes())
    assert leaf.issuer == ca.subject != leaf.subject  # a leaf, not self-signed
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert not list(keys.parent.glob(".local.new-*"))  # no half-made folder left behind


def test_keys_default_location_follows_env_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("FACESWAP_C2PA_DIR", str(tmp_path / "x"))
    assert cc.keys_dir() == tmp_path / "x"
    assert cc.keys_dir(str(tmp_path / "y")) == tmp_path / "y"
    monkeypatch.delenv("FACESWAP_C2PA_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert cc.keys_dir() == tmp_path / "cfg" / "faceswap" / "c2pa"


def test_readable_private_key_is_refused(tmp_path):
    folder = cc.ensure_local_chain(tmp_path / "k")
    os.chmod(folder / "signer.key", 0o644)
    with pytest.raises(UserError, match="chmod 600"):
        cc.load_chain(keys=folder)


def test_incomplete_key_folder_is_a_user_error(tmp_path):
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "ca.pem").write_text("left over")
    with pytest.raises(UserError, match="holds no signer.key"):
        cc.load_chain(keys=tmp_path / "k")
    folder = cc.ensure_local_chain(tmp_path / "k2")
    (folder / "signer.pem").unlink()
    with pytest.raises(UserError, match="has no signer.pem"):
        cc.load_chain(keys=folder)


def test_failed_signing_leaves_no_output(tmp_path, photo_clip):
    out = tmp_path / "out.mp4"
    w = VideoWriter(out, fps=25)
    for f in photo_clip[:3]:
        w.write(f)

    def fail(tmp):
        raise UserError("signing failed")

    with pytest.raises(UserError):
        w.close(before_rename=fail)
    w.abort()  # what convert does on any error
    assert list(tmp_path.iterdir()) == []


def test_organisation_chain_needs_cert_and_matching_key(tmp_path):
    org = cc.ensure_local_chain(tmp_path / "org")
    other = cc.ensure_local_chain(tmp_path / "other")
    with pytest.raises(UserError, match="go together"):
        cc.load_chain(cert=org / "signer.pem")
    with pytest.raises(UserError, match="does not belong"):
        cc.load_chain(cert=org / "signer.pem", key=other / "signer.key")
    chain = cc.load_chain(cert=org / "signer.pem", key=org / "signer.key")
    assert chain.alg == "es256" and chain.origin == f"the chain {org / 'signer.pem'}"


def test_self_signed_signer_is_refused(tmp_path, photo_clip):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = cc._name("self-signed")
    now = datetime.datetime.now(datetime.timezone.utc)
    # Everything the working leaf has, but issued by itself.
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    image = tmp_path / "a.png"
    write_image(image, photo_clip[0])
    with pytest.raises(UserError, match="C2PA signing of a.png .*certificate is invalid"):
        cc.ManifestSigner(cc.SigningChain(pem, key_pem), {"run_id": RUN}).sign(image)


# --- sign and read back --------------------------------------------------------------------------------------------

def test_sign_verify_round_trip(signed, source, keys, signer):
    assert not list(signed.parent.glob(".*"))  # no temp file left beside the output
    assert len(list(read_video(signed))) == 24  # the signed file still decodes
    pem, names = cc.trust_anchors("local", keys)
    m = cc.read_manifest(signed, pem, names)
    assert m["state"] == "trusted" and m["failures"] == []
    assert m["synthetic"] and m["digital_source_types"] == [cc.DIGITAL_SOURCE_TYPE]
    assert m["actions"] == ["c2pa.opened", "c2pa.edited"]
    assert m["claim_generator"] == ["faceswap"] and m["title"] == "out.mp4"
    facts = m["facts"]
    assert facts["run_id"] == RUN and facts["watermark"] == FACTS["watermark"]
    assert facts["checkpoint"] == FACTS["checkpoint"]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert facts["source"] == {"name": "B.mp4", "sha256": digest}
    assert m["ingredients"] == [{"title": "B.mp4", "relationship": "parentOf", "sha256": digest}]
    assert signer.record["signed"] >= 1 and 2000 < signer.record["bytes_added"] < 20000


def test_untrusted_then_trusted_by_anchor(signed, keys, tmp_path):
    pem, names = cc.trust_anchors("none", keys)
    assert cc.read_manifest(signed, pem, names)["state"] == "untrusted"
    # Another CA as the only anchor: still untrusted; with ours in the list: trusted.
    org = cc.ensure_local_chain(tmp_path / "org")
    pem, names = cc.trust_anchors([str(org / "ca.pem")], keys)
    m = cc.read_manifest(signed, pem, names)
    assert m["state"] == "untrusted" and m["failures"] == ["signingCredential.untrusted"]
    pem, names = cc.trust_anchors([str(org / "ca.pem"), str(keys / "ca.pem")], keys)
    assert cc.read_manifest(signed, pem, names)["state"] == "trusted"


def test_organisation_chain_trusted_only_with_its_anchor(tmp_path, photo_clip):
    org = cc.ensure_local_chain(tmp_path / "org")
    image = tmp_path / "a.jpg"
    write_image(image, photo_clip[0])
    cc.ManifestSigner(cc.load_chain(cert=org / "signer.pem", key=org / "signer.key"), {"run_id": RUN})(image)
    assert cc.read_manifest(image)["state"] == "untrusted"
    assert cc.read_manifest(image, *cc.trust_anchors(str(org / "ca.pem")))["state"] == "trusted"


def test_one_flipped_byte_in_the_video_data_is_invalid(signed, keys, tmp_path):
    data = bytearray(signed.read_bytes())
    start, size = _boxes(bytes(data))["mdat"]
    data[start + size - 64] ^= 0x01  # in the last frame: the others still decode
    bad = tmp_path / "tampered.mp4"
    bad.write_bytes(bytes(data))
    m = cc.read_manifest(bad, *cc.trust_anchors("local", keys))
    assert m["state"] == "invalid" and "assertion.bmffHash.mismatch" in m["failures"]
    report = verify_file(bad, keys=keys)
    assert report["c2pa"]["state"] == "invalid" and "INVALID" in report["verdict"]
    assert report["watermark"]["present"]  # the pixels still carry the mark


def test_remux_drops_the_manifest_and_the_watermark_carries_the_proof(signed, keys, tmp_path):
    remuxed = tmp_path / "remuxed.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(signed), "-c", "copy",
                    str(remuxed)], check=True)
    report = verify_file(remuxed, keys=keys)
    assert report["c2pa"]["state"] == "absent"
    assert report["watermark"]["present"] and report["watermark"]["payload"] == run_tag(RUN)
    assert report["found"] == {"watermark": True, "c2pa": False, "metadata": False} and report["marked"]
    assert "watermark carries the proof" in report["verdict"]


def test_image_folder_signs_each_image_against_its_source(tmp_path, photo_clip, keys):
    src, out = tmp_path / "src", tmp_path / "out"
    for name in ("a.png", "b.jpg", "c.bmp"):
        write_image(src / name, photo_clip[0])
        write_image(out / name, stamp_frame(photo_clip[0], RUN))
    signer = cc.ManifestSigner(cc.load_chain(keys=keys), {"run_id": RUN})
    signer(out, source=src)
    assert signer.record["signed"] == 2 and signer.record["skipped"] == ["c.bmp"]
    pem, names = cc.trust_anchors("local", keys)
    b = cc.read_manifest(out / "b.jpg", pem, names)
    assert b["state"] == "trusted" and b["facts"]["source"]["sha256"] == hashlib.sha256(
        (src / "b.jpg").read_bytes()).hexdigest()
    assert cc.read_manifest(out / "c.bmp", pem, names)["state"] == "unsupported"
    report = verify_file(out, keys=keys)
    assert report["c2pa"]["state"] == "trusted" and report["c2pa"]["files"] == {"trusted": 2, "unsupported": 1}


# --- offline ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def listener():
    """A local TCP server that counts connections: the native library's own sockets show up here."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.1)
    hits, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                hits.append(1)
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield srv.getsockname()[1], hits
    stop.set()
    thread.join()
    srv.close()


def test_no_network_while_signing_or_verifying(tmp_path, photo_clip, keys, monkeypatch, listener):
    import c2pa

    port, hits = listener
    chain = cc.load_chain(keys=keys)
    # A file whose manifest lives "online" at the local listener: a fetching reader would connect to it.
    remote = tmp_path / "remote.jpg"
    write_image(remote, photo_clip[0])
    ctx = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    builder = c2pa.Builder(cc.ManifestSigner(chain, {}).manifest("remote.jpg", "image/jpeg", None), context=ctx)
    builder.set_no_embed()
    builder.set_remote_url(f"http://127.0.0.1:{port}/manifest.c2pa")
    with c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain.cert_pem, chain.key_pem, None)) as s, \
            open(remote, "rb") as src, open(tmp_path / "r.jpg", "w+b") as dst:
        builder.sign(s, "image/jpeg", src, dst)
    remote = tmp_path / "r.jpg"

    def refuse(*args, **kwargs):
        raise AssertionError("network access during C2PA signing or verifying")

    with monkeypatch.context() as m:
        m.setattr(socket.socket, "connect", refuse)
        m.setattr(socket.socket, "connect_ex", refuse)
        m.setattr(socket, "create_connection", refuse)
        image = tmp_path / "a.png"
        write_image(image, photo_clip[0])
        cc.ManifestSigner(chain, {"run_id": RUN})(image)
        assert cc.read_manifest(image, *cc.trust_anchors("local", keys))["state"] == "trusted"
        assert cc.read_manifest(remote)["state"] == "remote"
    assert hits == []
    # The listener does see the native library when it is allowed online: the check above can fail.
    with pytest.raises(c2pa.C2paError):
        with open(remote, "rb") as fh:
            c2pa.Reader("image/jpeg", fh, context=c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": True}}))
    assert hits


# --- convert's switch ----------------------------------------------------------------------------------------------

def test_c2pa_off_warns_and_bad_values_are_user_errors(capsys):
    assert cc.c2pa_signer(OmegaConf.create({"provenance": {"c2pa": False}}), RUN) is None
    assert "WARNING: provenance.c2pa=false" in capsys.readouterr().err
    assert cc.c2pa_signer(OmegaConf.create({"provenance": {"c2pa": {"enabled": False}}}), RUN) is None
    with pytest.raises(UserError, match="provenance.c2pa.enabled"):
        cc.c2pa_settings(OmegaConf.create({"c2pa": {"enabled": "maybe"}}))
    with pytest.raises(UserError, match="provenance.c2pa"):
        cc.c2pa_settings(OmegaConf.create({"c2pa": "yes"}))


# --- verify's exit codes and --json ---------------------------------------------------------------------------------

def _video(path, frames):
    with VideoWriter(path, fps=25) as w:
        for f in frames:
            w.write(f)
    return path


def test_verify_exit_codes_follow_grep(signed, keys, tmp_path, photo_clip, capsys):
    keys_arg = f"c2pa.keys={keys}"
    assert main(["verify", str(signed), keys_arg, "max_frames=8"]) == 0
    out = capsys.readouterr().out
    assert "c2pa:      manifest TRUSTED" in out and "declares trainedAlgorithmicMedia" in out
    plain = _video(tmp_path / "plain.mp4", photo_clip[:6])
    assert main(["verify", str(plain), keys_arg]) == 1
    assert "no manifest" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_verify_json_prints_one_object(signed, keys, tmp_path, photo_clip, capsys):
    assert main(["verify", str(signed), "--json", f"c2pa.keys={keys}", "max_frames=8"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)  # the whole of stdout is one JSON object
    assert set(report) >= {"watermark", "c2pa", "metadata", "found", "marked", "verdict"}
    assert report["c2pa"]["state"] == "trusted" and report["watermark"]["payload"] == run_tag(RUN)
    assert report["found"]["c2pa"] and report["found"]["watermark"] and report["marked"]
    plain = _video(tmp_path / "plain.mp4", photo_clip[:6])
    assert main(["verify", str(plain), "--json", "c2pa.trust=none"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["marked"] and report["c2pa"]["state"] == "absent"
    assert main(["verify", str(tmp_path / "missing.mp4"), "--json"]) == 2
    io = capsys.readouterr()
    assert io.out == "" and io.err.startswith("error: ") and len(io.err.strip().splitlines()) == 1


def test_verify_bad_c2pa_settings_are_one_line_errors(signed, tmp_path, capsys):
    assert main(["verify", str(signed), f"c2pa.trust={tmp_path / 'nope.pem'}"]) == 2
    assert "c2pa.trust" in capsys.readouterr().err
    (tmp_path / "bad.pem").write_text("not a certificate")
    assert main(["verify", str(signed), f"c2pa.trust={tmp_path / 'bad.pem'}"]) == 2
    assert "holds no PEM certificate" in capsys.readouterr().err
    assert main(["verify", str(signed), "format=yaml"]) == 2
    assert "format" in capsys.readouterr().err


def test_console_verify_json_exit_codes(signed, keys, tmp_path):
    env = {**os.environ, "FACESWAP_C2PA_DIR": str(keys)}
    proc = subprocess.run([sys.executable, "-m", "faceswap", "verify", str(signed), "--json", "max_frames=4"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["c2pa"]["state"] == "trusted"
    unsigned = tmp_path / "blank.png"
    write_image(unsigned, np.full((64, 64, 3), 90, np.uint8))
    proc = subprocess.run([sys.executable, "-m", "faceswap", "verify", str(unsigned), "--json"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and json.loads(proc.stdout)["marked"] is False


# --- convert end to end ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_convert_output_carries_a_trusted_manifest(tmp_path, capsys):
    from tests.convert import media

    frames, lms = media.moving_face(8, (128, 96))
    video = media.write_video(tmp_path / "b.mp4", frames)
    media.write_alignments(tmp_path / "extract" / "alignments.json", video, lms, (128, 96))
    run = media.tiny_checkpoint(tmp_path / "run")
    out = tmp_path / "swapped.mp4"
    args = ["convert", str(video), f"checkpoint={run}", f"out={out}", f"alignments={tmp_path / 'extract'}",
            "progress=false", "preset=ultrafast"]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads(out.with_suffix(".json").read_text())
    record = summary["provenance"]["c2pa"]
    assert record["signed"] == 1 and record["bytes_added"] > 2000
    m = verify_file(out)["c2pa"]  # FACESWAP_C2PA_DIR points at the session's keys: the local CA is the anchor
    assert m["state"] == "trusted" and m["facts"]["run_id"] == summary["run_id"]
    assert m["facts"]["source"]["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
    files = list(run.rglob("model.safetensors"))
    assert len(files) == 1 and m["facts"]["checkpoint"]["sha256"] == hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or ".c2pa-" in p.name]  # no temp file left
    off = tmp_path / "unsigned.mp4"
    assert main([*args[:3], f"out={off}", *args[4:], "provenance.c2pa=false"]) == 0
    assert "WARNING: provenance.c2pa=false" in capsys.readouterr().err
    assert verify_file(off)["c2pa"]["state"] == "absent"
    assert json.loads(off.with_suffix(".json").read_text())["provenance"]["c2pa"] is None


@pytest.mark.slow
def test_convert_image_folder_signs_every_image(tmp_path, capsys):
    from tests.convert import media

    frames, _ = media.moving_face(3, (128, 96))
    src = tmp_path / "frames"
    for i, f in enumerate(frames):
        write_image(src / f"shot_{i}.png", f)
    run = media.tiny_checkpoint(tmp_path / "run")
    out = tmp_path / "swapped"
    assert main(["convert", str(src), f"checkpoint={run}", f"out={out}", "alignments=none", "progress=false"]) == 0, \
        capsys.readouterr().err
    assert json.loads((out / "convert.json").read_text())["provenance"]["c2pa"]["signed"] == 3
    report = verify_file(out)
    assert report["c2pa"]["state"] == "trusted" and report["c2pa"]["files"] == {"trusted": 3}
    for i in range(3):
        m = cc.read_manifest(out / f"shot_{i}.png", *cc.trust_anchors("local"))
        assert m["state"] == "trusted"
        assert m["facts"]["source"]["sha256"] == hashlib.sha256((src / f"shot_{i}.png").read_bytes()).hexdigest()
