#!/usr/bin/env python3
"""A SAML 2.0 identity provider for Latchkey's integration tests (pysaml2 + xmlsec1).

    python3 tests/saml/idp.py --dir DIR [--port 0]

Generates its key and self-signed certificate (DIR/idp.key, DIR/idp.crt), an attacker's
(DIR/attacker.key, DIR/attacker.crt) and a rollover certificate (DIR/rollover.crt), binds
127.0.0.1, prints one JSON line {"port", "base_url", "metadata_url", "entity_id"} on stdout,
logs on stderr, and exits when stdin reaches EOF or on SIGTERM.

Endpoints:
  GET  /metadata[?rollover=1][&signed=1|attacker|tampered]
                                IdP metadata (rollover: a second signing certificate listed;
                                signed: enveloped signature by DIR/metasigner.key, or by the
                                attacker's key, or signed then edited)
  POST /sp                      body = an SP's metadata XML; registers it (204)
  POST /next                    JSON: what the next sign-ins produce (persists until changed)
  POST /reset                   back to the defaults
  GET  /sso/redirect            HTTP-Redirect binding AuthnRequest (?case= overrides /next)
  POST /sso/post                HTTP-POST binding AuthnRequest (?case= overrides /next)
  GET  /idp-initiated?sp=ID     an unsolicited response for that SP (?case= too)
  GET  /slo/redirect            Single Logout (HTTP-Redirect): an SP's LogoutRequest (its redirect
                                signature verified against the SP metadata, parsed by pysaml2,
                                recorded, answered with a signed LogoutResponse to the SP's
                                SingleLogoutService) or an SP's LogoutResponse (verified, recorded)
  GET  /idp-logout?sp=ID        an IdP-initiated LogoutRequest to that SP's SingleLogoutService
                                (302), for the last session issued (or ?name_id=&session_index=);
                                ?case=unsigned|attacker|tampered|wrong_destination|no_session_index
  GET  /logouts                 JSON: the logout messages received, oldest first

A sign-in answers 200 with an auto-submit form (SAMLResponse, RelayState) to the ACS and the
header X-Saml-Case: {case or genuine}. Failures answer 400 text/plain with the reason.

Signatures: RSA-SHA256 with SHA-256 digests, exclusive c14n, enveloped (xmlsec1 through
pysaml2's CryptoBackendXmlSec1). Encryption (`encrypt: true`): the signed Assertion becomes an
EncryptedAssertion, data `cipher` (aes256-gcm by default; aes128-gcm, aes256-cbc, aes128-cbc),
key transport rsa-oaep-mgf1p (SHA-1 OAEP digest, MGF1-SHA1:
xmlsec1's defaults for that algorithm), to the SP metadata's encryption (or use-less) certificate.
See corpus.py for the attack cases.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import hashlib
import html
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*CFB.*")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import corpus  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from lxml import etree  # noqa: E402
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2 import saml as saml_mod  # noqa: E402
from saml2 import samlp  # noqa: E402
from saml2.config import IdPConfig  # noqa: E402
from saml2.metadata import entity_descriptor  # noqa: E402
from saml2.server import Server  # noqa: E402
from saml2.sigver import (  # noqa: E402
    extract_rsa_key_from_x509_cert,
    pem_format,
    pre_encryption_part,
    pre_signature_part,
    verify_redirect_signature,
)
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256  # noqa: E402

log = logging.getLogger("saml-idp")

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
XENC = "http://www.w3.org/2001/04/xmlenc#"
# Content encryption: the algorithm URI and xmlsec1's session key for it.
CIPHERS = {
    "aes256-gcm": ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "aes-256"),
    "aes128-gcm": ("http://www.w3.org/2009/xmlenc11#aes128-gcm", "aes-128"),
    "aes256-cbc": ("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "aes-256"),
    "aes128-cbc": ("http://www.w3.org/2001/04/xmlenc#aes128-cbc", "aes-128"),
}
RSA_OAEP_MGF1P = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RESPONSE_NODE = f"{corpus.SAMLP}:Response"
ASSERTION_NODE = f"{corpus.SAML}:Assertion"

NAME_ID_FORMATS = {
    "emailAddress": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "persistent": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "transient": "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}
NAME_FORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
NAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

DEFAULTS = {
    "name_id": "alice@corp.example",
    "name_id_format": "emailAddress",
    "attributes": {
        "mail": ["alice@corp.example"],
        "displayName": ["Alice Example"],
        "groups": ["engineering", "admins"],
    },
    "authn_context": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    "sign": "both",
    "case": None,
    "encrypt": False,
    "cipher": "aes256-gcm",
    # Seconds the AuthnInstant lies in the past: an SSO session at the IdP reused.
    "authn_age": 0,
}

for _prefix, _uri in [
    ("samlp", corpus.SAMLP),
    ("saml", corpus.SAML),
    ("ds", corpus.DS),
    ("md", MD),
    ("xenc", XENC),
    ("xs", "http://www.w3.org/2001/XMLSchema"),
    ("xsi", "http://www.w3.org/2001/XMLSchema-instance"),
]:
    ElementTree.register_namespace(_prefix, _uri)


class BadRequest(Exception):
    """Answered as 400 text/plain."""


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_key_cert(directory: str, name: str, cn: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path = os.path.join(directory, f"{name}.key")
    cert_path = os.path.join(directory, f"{name}.crt")
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
    return {"key": key_path, "cert": cert_path, "b64": b64}


class Idp:
    def __init__(self, directory: str, base_url: str):
        self.dir = directory
        self.base_url = base_url
        self.entity_id = f"{base_url}/metadata"
        self.idp = make_key_cert(directory, "idp", "Latchkey test IdP")
        self.attacker = make_key_cert(directory, "attacker", "Latchkey test attacker")
        self.rollover = make_key_cert(directory, "rollover", "Latchkey test IdP (rollover)")
        self.metasigner = make_key_cert(directory, "metasigner", "Latchkey test IdP metadata signer")
        self.lock = threading.RLock()
        self.next = copy.deepcopy(DEFAULTS)
        self.sps: dict[str, int] = {}  # SP entity id -> key in the metadata store
        self.sessions: list[dict] = []  # {"sp", "name_id", "session_index"} per response issued
        self.logouts: list[dict] = []  # logout messages received
        conf = {
            "entityid": self.entity_id,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{base_url}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{base_url}/sso/post", BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [(f"{base_url}/slo/redirect", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAME_ID_FORMATS["emailAddress"], NAME_ID_FORMATS["persistent"]],
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                    "want_authn_requests_signed": False,
                }
            },
            "key_file": self.idp["key"],
            "cert_file": self.idp["cert"],
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {},
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "delete_tmpfiles": True,
        }
        self.config = IdPConfig()
        self.config.load(conf)
        self.server = Server(config=self.config)

    # ---------------------------------------------------------------- metadata

    def metadata(self, rollover: bool, signed: str | None = None) -> bytes:
        with self.lock:
            self.config.additional_cert_files = [self.rollover["cert"]] if rollover else None
            try:
                ed = entity_descriptor(self.config)
            finally:
                self.config.additional_cert_files = None
            ed.extensions = None  # pysaml2's algorithm-support list: not a usual IdP shape
            if not signed:
                return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ed.to_string()
            if signed not in ("1", "attacker", "tampered"):
                raise BadRequest(f"signed must be 1, attacker or tampered, not {signed!r}")
            signer = self.attacker if signed == "attacker" else self.metasigner
            ed.id = "_" + hashlib.sha256(os.urandom(16)).hexdigest()[:32]
            root = corpus.parse(ed.to_string())
            tpl = corpus.parse(pre_signature_part(ed.id, signer["b64"], sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256).to_string())
            root.insert(0, tpl)
            xml = corpus.serialize(root).decode("utf-8")
            try:
                out = self.server.sec.sign_statement(xml, f"{MD}:EntityDescriptor", key_file=signer["key"], node_id=ed.id)
            except Exception as e:  # noqa: BLE001
                raise BadRequest(f"xmlsec1 signing of the metadata failed: {e!r}") from e
            out = out.encode("utf-8") if isinstance(out, str) else out
            if signed == "tampered":
                out = out.replace(b"/sso/redirect", b"/evil/redirect", 1)
            return b'<?xml version="1.0" encoding="UTF-8"?>\n' + out.split(b"?>", 1)[-1].lstrip() if out.startswith(b"<?xml") else b'<?xml version="1.0" encoding="UTF-8"?>\n' + out

    def register_sp(self, body: bytes) -> str:
        try:
            root = corpus.parse(body)
        except etree.XMLSyntaxError as e:
            raise BadRequest(f"SP metadata is not XML: {e}") from e
        eid = root.get("entityID")
        if root.tag != f"{{{MD}}}EntityDescriptor" or not eid:
            raise BadRequest("SP metadata must be an md:EntityDescriptor with an entityID")
        if root.find(f"{{{MD}}}SPSSODescriptor") is None:
            raise BadRequest("SP metadata has no md:SPSSODescriptor")
        with self.lock:
            old = self.sps.pop(eid, None)
            if old is not None:
                self.server.metadata.metadata.pop(old, None)
            try:
                self.server.metadata.load("inline", body.decode("utf-8"))
            except Exception as e:  # noqa: BLE001 - any pysaml2 failure is the caller's input
                raise BadRequest(f"pysaml2 refused the SP metadata: {e!r}") from e
            self.sps[eid] = self.server.metadata.ii
        log.info("registered SP %s", eid)
        return eid

    def sp_descriptor(self, eid: str) -> dict:
        if eid not in self.sps:
            raise BadRequest(f"unknown SP {eid!r} (register its metadata with POST /sp)")
        return self.server.metadata[eid]["spsso_descriptor"][0]

    def sp_acs(self, eid: str) -> str:
        acs = self.server.metadata.assertion_consumer_service(eid, BINDING_HTTP_POST)
        if not acs:
            raise BadRequest(f"SP {eid} has no HTTP-POST AssertionConsumerService")
        return acs[0]["location"]

    # ---------------------------------------------------------------- AuthnRequests

    def parse_request(self, saml_request: str, binding: str, raw_query: str | None, form: dict):
        with self.lock:
            try:
                req = self.server.parse_authn_request(saml_request, binding)
            except Exception as e:  # noqa: BLE001
                raise BadRequest(f"pysaml2 could not parse the AuthnRequest: {e!r}") from e
            if req is None:
                raise BadRequest("pysaml2 could not parse the AuthnRequest")
            msg = req.message
            if msg.issuer is None or not msg.issuer.text:
                raise BadRequest("AuthnRequest has no Issuer")
            sp = msg.issuer.text.strip()
            desc = self.sp_descriptor(sp)
            if str(desc.get("authn_requests_signed", "false")).lower() in ("true", "1"):
                if binding == BINDING_HTTP_REDIRECT:
                    self.verify_redirect(sp, raw_query or "", form)
                elif msg.signature is None:
                    # pysaml2 already verified a signature that is present (against metadata).
                    raise BadRequest("SP metadata says AuthnRequestsSigned=true but the POST AuthnRequest is unsigned")
            acs = msg.assertion_consumer_service_url
            if not acs and msg.assertion_consumer_service_index is not None:
                for a in self.server.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST):
                    if str(a.get("index")) == str(msg.assertion_consumer_service_index):
                        acs = a["location"]
            if not acs:
                acs = self.sp_acs(sp)
            return sp, acs, msg.id

    def verify_redirect(self, sp: str, raw_query: str, form: dict, param: str = "SAMLRequest") -> None:
        sigalg = form.get("SigAlg")
        signature = form.get("Signature")
        if not sigalg or not signature:
            raise BadRequest("SP metadata says AuthnRequestsSigned=true but the redirect carries no SigAlg/Signature")
        certs = self.server.metadata.certs(sp, "any", "signing")
        if not certs:
            raise BadRequest("SP metadata says AuthnRequestsSigned=true but has no signing certificate")
        backend = self.server.sec.sec_backend
        try:
            signer = backend.get_signer(sigalg)
        except Exception as e:  # noqa: BLE001
            raise BadRequest(f"unsupported SigAlg {sigalg}: {e!r}") from e
        if signer is None:
            raise BadRequest(f"unsupported SigAlg {sigalg}")
        try:
            sig = base64.b64decode(signature)
        except ValueError as e:
            raise BadRequest("Signature is not base64") from e
        # The binding signs the URL-encoded octets as sent: SAMLRequest=..&RelayState=..&SigAlg=..
        raw = {}
        for part in raw_query.split("&"):
            k = part.split("=", 1)[0]
            if k in (param, "RelayState", "SigAlg") and k not in raw:
                raw[k] = part
        octets = "&".join(raw[k] for k in (param, "RelayState", "SigAlg") if k in raw).encode("ascii")
        msg = {k: form[k] for k in (param, "RelayState", "SigAlg", "Signature") if k in form}
        for _name, cert in certs:
            try:
                key = extract_rsa_key_from_x509_cert(pem_format(cert))
                if signer.verify(octets, sig, key):
                    return
            except Exception:  # noqa: BLE001,S110 - try the next certificate / pysaml2's own way
                pass
            try:
                # pysaml2's check re-encodes the values itself (urlencode)
                if verify_redirect_signature(msg, backend, cert):
                    return
            except Exception:  # noqa: BLE001,S110
                pass
        raise BadRequest(f"the redirect signature of the {param} does not verify with the SP's certificate")

    # ---------------------------------------------------------------- Single Logout

    def sp_slo(self, sp: str) -> str:
        slo = self.server.metadata.single_logout_service(sp, BINDING_HTTP_REDIRECT, "spsso")
        if not slo:
            raise BadRequest(f"SP {sp} has no HTTP-Redirect SingleLogoutService")
        return slo[0]["location"]

    def redirect_url(self, dest: str, param: str, xml: str, relay: str | None, signer: dict | None) -> str:
        """Bindings §3.4.4: DEFLATE, base64, URL-encode; signed with RSA-SHA256 over the octets."""
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        deflated = c.compress(xml.encode("utf-8")) + c.flush()
        q = f"{param}=" + urllib.parse.quote(base64.b64encode(deflated).decode("ascii"), safe="")
        if relay is not None:
            q += "&RelayState=" + urllib.parse.quote(relay, safe="")
        if signer is not None:
            q += "&SigAlg=" + urllib.parse.quote(SIG_RSA_SHA256, safe="")
            with open(signer["key"], "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
            sig = key.sign(q.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
            q += "&Signature=" + urllib.parse.quote(base64.b64encode(sig).decode("ascii"), safe="")
        return dest + ("&" if "?" in dest else "?") + q

    def logout_request(self, sp: str, name_id: str | None, session_index: str | None, case: str | None) -> str:
        """An IdP-initiated LogoutRequest to the SP: the URL the browser is sent to."""
        with self.lock:
            self.sp_descriptor(sp)
            dest = self.sp_slo(sp)
            mine = [x for x in self.sessions if x["sp"] == sp]
        if name_id is None or session_index is None:
            if not mine:
                raise BadRequest(f"no session was issued to {sp} yet")
            name_id = name_id or mine[-1]["name_id"]
            session_index = session_index if session_index is not None else mine[-1]["session_index"]
        now = time.time()
        rid = corpus.random_id()
        to = "https://elsewhere.example/slo" if case == "wrong_destination" else dest
        index = "" if case == "no_session_index" else f"<samlp:SessionIndex>{html.escape(session_index)}</samlp:SessionIndex>"
        xml = (
            f'<samlp:LogoutRequest xmlns:samlp="{corpus.SAMLP}" xmlns:saml="{corpus.SAML}" ID="{rid}" Version="2.0" '
            f'IssueInstant="{iso(now)}" NotOnOrAfter="{iso(now + 300)}" Destination="{html.escape(to, quote=True)}">'
            f"<saml:Issuer>{html.escape(self.entity_id)}</saml:Issuer>"
            f'<saml:NameID Format="{NAME_ID_FORMATS["emailAddress"]}">{html.escape(name_id)}</saml:NameID>{index}'
            "</samlp:LogoutRequest>"
        )
        signer = None if case == "unsigned" else (self.attacker if case == "attacker" else self.idp)
        url = self.redirect_url(dest, "SAMLRequest", xml, "idp-relay", signer)
        if case == "tampered":
            # Signed for this NameID, then the request swapped for one naming someone else.
            other = xml.replace(html.escape(name_id), "bob@corp.example")
            forged = self.redirect_url(dest, "SAMLRequest", other, "idp-relay", None).split("?", 1)[1].split("&")[0]
            url = url.split("?", 1)[0] + "?" + "&".join([forged] + url.split("?", 1)[1].split("&")[1:])
        log.info("IdP-initiated logout for %s (%s)", sp, case or "genuine")
        return url

    def received(self, param: str, raw_query: str, q: dict):
        """A logout message parsed by pysaml2, from a registered SP, its redirect signature verified."""
        try:
            if param == "SAMLRequest":
                msg = self.server.parse_logout_request(q[param], BINDING_HTTP_REDIRECT).message
            else:
                msg = self.server.parse_logout_request_response(q[param], BINDING_HTTP_REDIRECT).response
        except Exception as e:  # noqa: BLE001
            raise BadRequest(f"pysaml2 could not parse the {param}: {e!r}") from e
        sp = (msg.issuer.text or "").strip() if msg.issuer is not None else ""
        self.sp_descriptor(sp)
        self.verify_redirect(sp, raw_query, q, param)
        return msg, sp

    def sp_logout(self, raw_query: str, q: dict) -> str | None:
        """An SP's LogoutRequest or LogoutResponse on /slo/redirect; answers the redirect (if any)."""
        with self.lock:
            if "SAMLRequest" in q:
                msg, sp = self.received("SAMLRequest", raw_query, q)
                entry = {
                    "kind": "request",
                    "sp": sp,
                    "id": msg.id,
                    "destination": msg.destination,
                    "name_id": msg.name_id.text if msg.name_id is not None else None,
                    "name_id_format": msg.name_id.format if msg.name_id is not None else None,
                    "session_index": [i.text for i in (msg.session_index or [])],
                }
                entry["issued"] = any(
                    x["sp"] == sp and x["name_id"] == entry["name_id"] and x["session_index"] in entry["session_index"]
                    for x in self.sessions
                )
                self.logouts.append(entry)
                log.info("LogoutRequest from %s: %s", sp, json.dumps(entry))
                now = time.time()
                xml = (
                    f'<samlp:LogoutResponse xmlns:samlp="{corpus.SAMLP}" xmlns:saml="{corpus.SAML}" ID="{corpus.random_id()}" '
                    f'Version="2.0" IssueInstant="{iso(now)}" Destination="{html.escape(self.sp_slo(sp), quote=True)}" '
                    f'InResponseTo="{html.escape(msg.id, quote=True)}"><saml:Issuer>{html.escape(self.entity_id)}</saml:Issuer>'
                    '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
                    "</samlp:LogoutResponse>"
                )
                return self.redirect_url(self.sp_slo(sp), "SAMLResponse", xml, q.get("RelayState"), self.idp)
            if "SAMLResponse" in q:
                msg, sp = self.received("SAMLResponse", raw_query, q)
                entry = {
                    "kind": "response",
                    "sp": sp,
                    "in_response_to": msg.in_response_to,
                    "status": msg.status.status_code.value,
                    "relay_state": q.get("RelayState"),
                }
                self.logouts.append(entry)
                log.info("LogoutResponse from %s: %s", sp, json.dumps(entry))
                return None
            raise BadRequest("missing SAMLRequest or SAMLResponse")

    # ---------------------------------------------------------------- responses

    def respond(self, sp: str, acs: str, in_response_to: str | None, case: str | None) -> bytes:
        with self.lock:
            s = copy.deepcopy(self.next)
        if case is None:
            case = s.get("case")
        if case is not None and case not in corpus.CASES:
            raise BadRequest(f"unknown case {case!r}; known: {', '.join(corpus.CASES)}")
        o = corpus.overrides(case)
        if "pad_to" in o:
            base = self.build(sp, acs, in_response_to, s, {k: v for k, v in o.items() if k != "pad_to"}, case)
            o = dict(o, pad_len=max(0, o["pad_to"] - len(base) - 200))
        xml = self.build(sp, acs, in_response_to, s, o, case)
        try:
            return corpus.mutate(case, xml)
        except Exception as e:  # noqa: BLE001
            raise BadRequest(f"mutation {case} failed: {e!r}") from e

    def build(self, sp: str, acs: str, irt: str | None, s: dict, o: dict, case: str | None) -> bytes:
        now = time.time()
        issued = now + o.get("issue_shift", 0)
        sign = o.get("sign", s.get("sign") or "both")
        if sign not in ("assertion", "response", "both", "none"):
            raise BadRequest(f"sign must be assertion|response|both, not {sign!r}")
        encrypt = bool(o.get("encrypt", s.get("encrypt")))
        cipher = o.get("cipher", s.get("cipher") or DEFAULTS["cipher"])
        if cipher not in CIPHERS:
            raise BadRequest(f"cipher must be one of {sorted(CIPHERS)}, not {cipher!r}")
        if case in corpus.NO_ENCRYPT:
            encrypt = False
        sign_alg = o.get("sign_alg", SIG_RSA_SHA256)
        digest_alg = o.get("digest_alg", DIGEST_SHA256)
        signer = o.get("signer")
        if signer == "attacker":
            key_file, keyinfo = self.attacker["key"], self.attacker["b64"]
        elif signer == "attacker_idp_cert":
            key_file, keyinfo = self.attacker["key"], self.idp["b64"]
        else:
            key_file, keyinfo = self.idp["key"], self.idp["b64"]

        if o.get("in_response_to") == "none":
            irt = None
        elif o.get("in_response_to") == "random":
            irt = corpus.random_id()

        name = str(s.get("name_id") or DEFAULTS["name_id"])
        fmt = s.get("name_id_format") or "emailAddress"
        fmt = NAME_ID_FORMATS.get(fmt, fmt)
        suffix = o.get("name_id_suffix", "")
        attributes = s.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise BadRequest("attributes must be an object of name -> [values]")

        with self.lock:
            try:
                resp = self.server.create_authn_response(
                    {},
                    irt,
                    acs,
                    sp,
                    name_id=saml_mod.NameID(text=name + suffix, format=fmt),
                    authn={"class_ref": s.get("authn_context") or DEFAULTS["authn_context"]},
                    sign_response=False,
                    sign_assertion=False,
                    encrypt_assertion=False,
                )
            except Exception as e:  # noqa: BLE001
                raise BadRequest(f"pysaml2 could not build the response: {e!r}") from e
        if not isinstance(resp, samlp.Response) or resp.assertion is None:
            raise BadRequest(f"pysaml2 built an unexpected response: {resp}")

        a = resp.assertion
        resp.issue_instant = iso(issued)
        a.issue_instant = iso(issued)
        if o.get("destination"):
            resp.destination = o["destination"]
        a.conditions.not_before = iso(now + o.get("not_before_shift", 0))
        a.conditions.not_on_or_after = iso(now + o.get("not_on_or_after_shift", 300))
        if o.get("audience"):
            a.conditions.audience_restriction[0].audience[0].text = o["audience"]
        for sc in a.subject.subject_confirmation:
            scd = sc.subject_confirmation_data
            scd.not_on_or_after = iso(now + o.get("not_on_or_after_shift", 300))
            scd.in_response_to = irt
            if o.get("recipient"):
                scd.recipient = o["recipient"]
        resp.in_response_to = irt
        for st in a.authn_statement:
            st.authn_instant = iso(issued - float(s.get("authn_age") or 0))
            if not st.session_index:
                st.session_index = corpus.random_id()
            with self.lock:
                self.sessions.append({"sp": sp, "name_id": name + suffix, "session_index": st.session_index})

        attrs = []
        for attr_name, values in attributes.items():
            if isinstance(values, str):
                values = [values]
            vals = []
            for v in values:
                v = str(v)
                if suffix and v == name:
                    v = name + suffix
                vals.append(saml_mod.AttributeValue(text=v))
            attrs.append(
                saml_mod.Attribute(
                    name=attr_name,
                    name_format=NAME_FORMAT_URI if ":" in attr_name else NAME_FORMAT_BASIC,
                    attribute_value=vals,
                )
            )
        if o.get("pad_len"):
            attrs.append(
                saml_mod.Attribute(
                    name="padding",
                    name_format=NAME_FORMAT_BASIC,
                    attribute_value=[saml_mod.AttributeValue(text="A" * o["pad_len"])],
                )
            )
        a.attribute_statement = [saml_mod.AttributeStatement(attribute=attrs)] if attrs else []

        if o.get("status_not_success"):
            resp.status = samlp.Status(
                status_code=samlp.StatusCode(
                    value=samlp.STATUS_RESPONDER,
                    status_code=samlp.StatusCode(value=samlp.STATUS_AUTHN_FAILED),
                ),
                status_message=samlp.StatusMessage(text="Authentication failed"),
            )
            resp.assertion = None
            if sign == "assertion":
                sign = "response"

        root = corpus.parse(resp.to_string())
        assertion = root.find(f"{{{corpus.SAML}}}Assertion")

        # Assertion signature first (the Response signature then covers it).
        if assertion is not None and sign in ("assertion", "both"):
            self._add_template(assertion, assertion.get("ID"), keyinfo, sign_alg, digest_alg)
            root = self._sign(root, ASSERTION_NODE, assertion.get("ID"), key_file)
            assertion = root.find(f"{{{corpus.SAML}}}Assertion")

        if encrypt and assertion is not None:
            if o.get("encrypt_to") == "attacker":
                enc_cert, enc_b64 = self.attacker["cert"], self.attacker["b64"]
            else:
                enc_cert, enc_b64 = self._sp_encryption_cert(sp)
            root = self._encrypt(root, assertion, enc_cert, enc_b64, cipher)

        if sign in ("response", "both"):
            self._add_template(root, root.get("ID"), keyinfo, sign_alg, digest_alg)
            root = self._sign(root, RESPONSE_NODE, root.get("ID"), key_file)
        return corpus.serialize(root)

    def _add_template(self, el, ident, keyinfo_b64, sign_alg, digest_alg) -> None:
        tpl = pre_signature_part(ident, keyinfo_b64, sign_alg=sign_alg, digest_alg=digest_alg)
        sig = corpus.parse(tpl.to_string())
        el.find(f"{{{corpus.SAML}}}Issuer").addnext(sig)

    def _sign(self, root, node_name: str, node_id: str, key_file: str):
        xml = corpus.serialize(root).decode("utf-8")
        try:
            out = self.server.sec.sign_statement(xml, node_name, key_file=key_file, node_id=node_id)
        except Exception as e:  # noqa: BLE001
            raise BadRequest(f"xmlsec1 signing failed: {e!r}") from e
        return corpus.parse(out.encode("utf-8") if isinstance(out, str) else out)

    def _sp_encryption_cert(self, sp: str):
        certs = self.server.metadata.certs(sp, "spsso", "encryption")
        if not certs:
            raise BadRequest(f"encrypt=true but SP {sp} metadata has no (encryption) certificate")
        b64 = "".join(certs[0][1].split())
        digest = hashlib.sha256(b64.encode("ascii")).hexdigest()[:16]
        path = os.path.join(self.dir, f"sp-enc-{digest}.crt")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(pem_format(b64) + b"\n")
        return path, b64

    def _encrypt(self, root, assertion, cert_file: str, cert_b64: str, cipher: str):
        # A standalone copy carries every namespace declaration it uses, so the decrypted
        # fragment parses on its own.
        standalone = etree.tostring(assertion)
        msg_enc, session_key = CIPHERS[cipher]
        template = pre_encryption_part(msg_enc=msg_enc, key_enc=RSA_OAEP_MGF1P, encrypt_cert=cert_b64)
        with tempfile.NamedTemporaryFile("wb", suffix=".xml", dir=self.dir, delete=False) as tf:
            tf.write(template.to_string())
            tpl_path = tf.name
        try:
            out = self.server.sec.crypto.encrypt(standalone, cert_file, tpl_path, session_key)
        except Exception as e:  # noqa: BLE001
            raise BadRequest(f"xmlsec1 encryption failed: {e!r}") from e
        finally:
            os.unlink(tpl_path)
        enc_data = corpus.parse(out if isinstance(out, bytes) else out.encode("utf-8"))
        wrapper = etree.Element(f"{{{corpus.SAML}}}EncryptedAssertion")
        wrapper.append(enc_data)
        root.replace(assertion, wrapper)
        return root


def form_page(acs: str, saml_response: bytes, relay: str | None) -> bytes:
    b64 = base64.b64encode(saml_response).decode("ascii")
    relay_input = (
        f'<input type="hidden" name="RelayState" value="{html.escape(relay, quote=True)}">' if relay is not None else ""
    )
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>SAML</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(acs, quote=True)}">'
        f'<input type="hidden" name="SAMLResponse" value="{html.escape(b64, quote=True)}">'
        f"{relay_input}"
        '<button type="submit">Continue</button></form></body></html>\n'
    )
    return page.encode("utf-8")


def make_handler(idp: Idp):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LatchkeyTestIdP/1"

        def log_message(self, fmt, *args):  # noqa: A003 - stderr, like the default
            sys.stderr.write("idp: %s - %s\n" % (self.address_string(), fmt % args))

        def _send(self, code: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8", headers=None):
            self.send_response(code)
            if code != 204:
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if code != 204 and body:
                self.wfile.write(body)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _split(self):
            u = urllib.parse.urlsplit(self.path)
            q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
            return u.path, u.query, q

        def _run(self, fn):
            try:
                fn()
            except BadRequest as e:
                log.warning("400: %s", e)
                self._send(400, (str(e) + "\n").encode("utf-8"))
            except Exception as e:  # noqa: BLE001
                log.exception("400 (unexpected)")
                self._send(400, f"error: {e!r}\n".encode("utf-8"))

        def _signin(self, sp, acs, irt, relay, case):
            xml = idp.respond(sp, acs, irt, case)
            label = case or idp.next.get("case") or "genuine"
            log.info("response for %s (%s, %d bytes)", sp, label, len(xml))
            self._send(200, form_page(acs, xml, relay), "text/html; charset=utf-8", {"X-Saml-Case": label})

        def do_GET(self):  # noqa: N802
            path, raw_query, q = self._split()
            if path == "/metadata":
                self._run(
                    lambda: self._send(
                        200,
                        idp.metadata(q.get("rollover") in ("1", "true"), q.get("signed") or None),
                        "application/samlmetadata+xml",
                    )
                )
            elif path == "/sso/redirect":

                def go():
                    if "SAMLRequest" not in q:
                        raise BadRequest("missing SAMLRequest")
                    sp, acs, irt = idp.parse_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT, raw_query, q)
                    self._signin(sp, acs, irt, q.get("RelayState"), q.get("case") or None)

                self._run(go)
            elif path == "/idp-initiated":

                def go():
                    sp = q.get("sp") or ""
                    with idp.lock:
                        idp.sp_descriptor(sp)
                        acs = idp.sp_acs(sp)
                    self._signin(sp, acs, None, None, q.get("case") or None)

                self._run(go)
            elif path == "/slo/redirect":

                def go():
                    to = idp.sp_logout(raw_query, q)
                    if to is None:
                        self._send(200, b"signed out\n")
                    else:
                        self._send(302, b"", headers={"Location": to})

                self._run(go)
            elif path == "/idp-logout":

                def go():
                    to = idp.logout_request(q.get("sp") or "", q.get("name_id"), q.get("session_index"), q.get("case"))
                    self._send(302, b"", headers={"Location": to})

                self._run(go)
            elif path == "/logouts":
                with idp.lock:
                    body = json.dumps(idp.logouts).encode("utf-8")
                self._send(200, body, "application/json")
            elif path == "/health":
                self._send(200, b"ok\n")
            else:
                self._send(404, b"not found\n")

        def do_POST(self):  # noqa: N802
            path, _raw_query, q = self._split()
            body = self._body()
            if path == "/sp":

                def go():
                    idp.register_sp(body)
                    self._send(204)

                self._run(go)
            elif path == "/next":

                def go():
                    try:
                        v = json.loads(body or b"{}")
                    except ValueError as e:
                        raise BadRequest(f"/next wants JSON: {e}") from e
                    if not isinstance(v, dict):
                        raise BadRequest("/next wants a JSON object")
                    unknown = set(v) - set(DEFAULTS)
                    if unknown:
                        raise BadRequest(f"/next: unknown keys {sorted(unknown)}")
                    if v.get("case") is not None and v["case"] not in corpus.CASES:
                        raise BadRequest(f"unknown case {v['case']!r}")
                    with idp.lock:
                        idp.next.update(v)
                    log.info("next: %s", json.dumps(idp.next))
                    self._send(204)

                self._run(go)
            elif path == "/reset":
                with idp.lock:
                    idp.next = copy.deepcopy(DEFAULTS)
                    idp.logouts = []
                self._send(204)
            elif path == "/sso/post":

                def go():
                    form = {
                        k: v[0]
                        for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()
                    }
                    if "SAMLRequest" not in form:
                        raise BadRequest("missing SAMLRequest")
                    sp, acs, irt = idp.parse_request(form["SAMLRequest"], BINDING_HTTP_POST, None, form)
                    self._signin(sp, acs, irt, form.get("RelayState"), q.get("case") or None)

                self._run(go)
            else:
                self._send(404, b"not found\n")

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="idp: %(levelname)s %(message)s")
    logging.getLogger("saml2").setLevel(logging.WARNING)
    os.makedirs(args.dir, exist_ok=True)

    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    base = f"http://127.0.0.1:{port}"
    idp = Idp(args.dir, base)
    httpd.RequestHandlerClass = make_handler(idp)

    def stop(*_a):
        log.info("stopping")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:  # noqa: BLE001,S110
            pass
        stop()

    threading.Thread(target=watch_stdin, daemon=True).start()

    print(
        json.dumps(
            {"port": port, "base_url": base, "metadata_url": idp.entity_id, "entity_id": idp.entity_id}
        ),
        flush=True,
    )
    log.info("listening on %s", base)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        stop()


if __name__ == "__main__":
    main()
