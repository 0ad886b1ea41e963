#!/usr/bin/env python3
"""Self-check of the test IdP (not run by CI): python3 tests/saml/selfcheck.py

Starts idp.py, registers a hand-written SP, signs in through HTTP-Redirect and HTTP-POST, and
checks with the xmlsec1 CLI that the genuine response's signatures verify against the IdP
certificate, that `sha1` is the IdP's signature and `other_key` / `embedded_cert` verify only
with the attacker's key, that encryption decrypts with the SP key only (and
`encrypted_other_key` with the attacker's only), that a signed-requests SP refuses unsigned or
badly signed redirects, and prints every case's size and first bytes. Exits non-zero on failure.
"""

from __future__ import annotations

import base64
import copy
import datetime
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402

SP_EID = "http://localhost:9/t/x/saml/c/metadata"
SP_ACS = "http://localhost:9/t/x/saml/c/acs"
SIGNED_SP_EID = "http://localhost:9/t/y/saml/c/metadata"
SIGNED_SP_ACS = "http://localhost:9/t/y/saml/c/acs"
RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
ASSERTION_NODE = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
NS = {"samlp": corpus.SAMLP, "saml": corpus.SAML, "ds": corpus.DS}

failures: list[str] = []


def check(cond: bool, what: str) -> None:
    print(f"  [{'ok' if cond else 'FAIL'}] {what}")
    if not cond:
        failures.append(what)


def key_cert(directory: str, name: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subj).issuer_name(subj).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    kp, cp = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    with open(kp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cp, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, kp, cp, base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def sp_metadata(eid: str, acs: str, cert_b64: str, signed: bool) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{eid}">
  <md:SPSSODescriptor AuthnRequestsSigned="{'true' if signed else 'false'}" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor>
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


def authn_request(eid: str, acs: str, destination: str, rid: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<samlp:AuthnRequest xmlns:samlp="{corpus.SAMLP}" xmlns:saml="{corpus.SAML}" ID="{rid}" Version="2.0" '
        f'IssueInstant="{now}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" '
        'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{eid}</saml:Issuer>"
        '<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    )


def deflate_b64(xml: str) -> str:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(c.compress(xml.encode()) + c.flush()).decode()


def http(method: str, url: str, body: bytes | None = None, ctype: str | None = None):
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def form_fields(page: bytes):
    text = page.decode()
    action = html.unescape(re.search(r'<form method="post" action="([^"]*)"', text).group(1))
    fields = {html.unescape(m.group(1)): html.unescape(m.group(2))
              for m in re.finditer(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', text)}
    return action, fields


def xmlsec_verify(xml: bytes, cert: str, node: str, node_id: str, workdir: str) -> bool:
    path = os.path.join(workdir, "verify.xml")
    with open(path, "wb") as f:
        f.write(xml)
    r = subprocess.run(
        ["xmlsec1", "--verify", "--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", cert,
         "--id-attr:ID", RESPONSE_NODE, "--id-attr:ID", ASSERTION_NODE, "--node-id", node_id, path],
        capture_output=True, check=False,
    )
    return r.returncode == 0


def xmlsec_verify_xpath(xml: bytes, cert: str, xpath: str, workdir: str) -> bool:
    path = os.path.join(workdir, "verify-xpath.xml")
    with open(path, "wb") as f:
        f.write(xml)
    r = subprocess.run(
        ["xmlsec1", "--verify", "--enabled-key-data", "raw-x509-cert", "--pubkey-cert-pem", cert,
         "--id-attr:ID", RESPONSE_NODE, "--id-attr:ID", ASSERTION_NODE, "--node-xpath", xpath, path],
        capture_output=True, check=False,
    )
    return r.returncode == 0


def naive_verify(xml: bytes, sig_xpath: str, pub) -> bool:
    """SignatureValue over exc-c14n(SignedInfo), and the digest of the referenced element (by
    ID, first match) with its own ds:Signature children stripped: the shortcut many
    hand-written verifiers take for the enveloped-signature transform."""
    import hashlib
    root = corpus.parse(xml)
    sig = root.xpath(sig_xpath)[0]
    si = sig.find("ds:SignedInfo", NS)
    c14n_si = etree.tostring(si, method="c14n", exclusive=True)
    value = base64.b64decode("".join(sig.find("ds:SignatureValue", NS).text.split()))
    try:
        pub.verify(value, c14n_si, padding.PKCS1v15(), hashes.SHA256())
    except Exception:  # noqa: BLE001
        return False
    uri = si.find("ds:Reference", NS).get("URI")[1:]
    target = copy.deepcopy(root.xpath("//*[@ID=$i]", i=uri)[0])
    for child in target.findall("ds:Signature", NS):
        target.remove(child)
    digest = base64.b64encode(hashlib.sha256(etree.tostring(target, method="c14n", exclusive=True)).digest()).decode()
    return digest == si.find("ds:Reference/ds:DigestValue", NS).text.strip()


def xmlsec_decrypt(xml: bytes, key: str, workdir: str) -> bytes | None:
    path = os.path.join(workdir, "decrypt.xml")
    with open(path, "wb") as f:
        f.write(xml)
    r = subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", key, path], capture_output=True, check=False)
    return r.stdout if r.returncode == 0 else None


def main() -> int:
    work = tempfile.mkdtemp(prefix="saml-selfcheck-")
    idp_dir = os.path.join(work, "idp")
    sp_key, sp_key_path, _sp_cert_path, sp_b64 = key_cert(work, "sp")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "idp.py"), "--dir", idp_dir],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "idp.log"), "wb"),
    )
    try:
        info = json.loads(proc.stdout.readline())
        print("idp:", info)
        base = info["base_url"]
        idp_crt, att_crt = os.path.join(idp_dir, "idp.crt"), os.path.join(idp_dir, "attacker.crt")
        att_key = os.path.join(idp_dir, "attacker.key")

        print("metadata")
        st, _h, md = http("GET", base + "/metadata")
        check(st == 200 and b"IDPSSODescriptor" in md and md.count(b'use="signing"') == 1, "metadata, one signing key")
        st, _h, md2 = http("GET", base + "/metadata?rollover=1")
        check(st == 200 and md2.count(b'use="signing"') == 2, "rollover metadata lists two signing keys")
        check(info["entity_id"].encode() in md, "metadata carries the entity id")

        print("register SPs")
        st, _h, _b = http("POST", base + "/sp", sp_metadata(SP_EID, SP_ACS, sp_b64, False).encode(), "application/xml")
        check(st == 204, "POST /sp -> 204")
        st, _h, _b = http("POST", base + "/sp", sp_metadata(SIGNED_SP_EID, SIGNED_SP_ACS, sp_b64, True).encode(),
                          "application/xml")
        check(st == 204, "POST /sp (AuthnRequestsSigned=true) -> 204")
        st, _h, b = http("POST", base + "/sp", b"<nope", "application/xml")
        check(st == 400, f"bad metadata -> 400 ({b.decode().strip()[:60]})")

        rid = corpus.random_id()
        saml_req = deflate_b64(authn_request(SP_EID, SP_ACS, base + "/sso/redirect", rid))

        def signin(case: str | None, relay: str | None = "rs&<x>"):
            q = {"SAMLRequest": saml_req}
            if relay is not None:
                q["RelayState"] = relay
            if case:
                q["case"] = case
            st, h, page = http("GET", base + "/sso/redirect?" + urllib.parse.urlencode(q))
            if st != 200:
                raise AssertionError(f"{case}: HTTP {st}: {page[:300]!r}")
            action, fields = form_fields(page)
            return h, action, fields, base64.b64decode(fields["SAMLResponse"])

        print("genuine (sign=both)")
        h, action, fields, xml = signin(None)
        root = corpus.parse(xml)
        a = root.find("saml:Assertion", NS)
        check(h.get("X-Saml-Case") == "genuine", "X-Saml-Case: genuine")
        check(action == SP_ACS and fields.get("RelayState") == "rs&<x>", "form action = ACS, RelayState round-trips")
        check(root.get("InResponseTo") == rid and root.get("Destination") == SP_ACS, "InResponseTo, Destination")
        scd = a.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
        check(scd.get("Recipient") == SP_ACS and scd.get("InResponseTo") == rid, "SubjectConfirmationData")
        check(a.find("saml:Conditions/saml:AudienceRestriction/saml:Audience", NS).text == SP_EID, "Audience")
        check(a.find("saml:AuthnStatement", NS).get("SessionIndex") is not None, "SessionIndex")
        names = {x.get("Name"): [v.text for v in x] for x in a.iter(f"{{{corpus.SAML}}}Attribute")}
        check(names.get("groups") == ["engineering", "admins"] and names.get("mail") == ["alice@corp.example"],
              f"attributes {names}")
        sm = root.findall(".//ds:SignatureMethod", NS)
        dm = root.findall(".//ds:DigestMethod", NS)
        cm = root.findall(".//ds:CanonicalizationMethod", NS)
        check(len(sm) == 2 and all(x.get("Algorithm").endswith("rsa-sha256") for x in sm), "two RSA-SHA256 signatures")
        check(all(x.get("Algorithm").endswith("#sha256") for x in dm), "SHA-256 digests")
        check(all(x.get("Algorithm") == "http://www.w3.org/2001/10/xml-exc-c14n#" for x in cm), "exclusive c14n")
        check(xmlsec_verify(xml, idp_crt, RESPONSE_NODE, root.get("ID"), work), "Response signature verifies (IdP cert)")
        check(xmlsec_verify(xml, idp_crt, ASSERTION_NODE, a.get("ID"), work), "Assertion signature verifies (IdP cert)")
        check(not xmlsec_verify(xml, att_crt, RESPONSE_NODE, root.get("ID"), work), "... and not with the attacker cert")

        print("sign=assertion / sign=response")
        for mode, expect in (("assertion", (False, True)), ("response", (True, False))):
            http("POST", base + "/next", json.dumps({"sign": mode}).encode(), "application/json")
            _h, _a, _f, x = signin(None)
            r = corpus.parse(x)
            has = (r.find("ds:Signature", NS) is not None, r.find("saml:Assertion/ds:Signature", NS) is not None)
            check(has == expect, f"sign={mode}: (response, assertion) signed = {has}")
        http("POST", base + "/reset")

        print("every case")
        sizes = {}
        responses = {}
        for case in corpus.CASES:
            h, _a, f, x = signin(case)
            responses[case] = x
            sizes[case] = len(x)
            ok = h.get("X-Saml-Case") == case
            head = x[:90].decode("utf-8", "replace").replace("\n", "\\n")
            print(f"  {'ok  ' if ok else 'FAIL'} {case:24} {len(x):>8} bytes  {head}")
            if not ok:
                failures.append(f"{case}: header {h.get('X-Saml-Case')}")

        print("signature cases")
        x = responses["sha1"]
        r = corpus.parse(x)
        check(all(m.get("Algorithm").endswith("rsa-sha1") for m in r.findall(".//ds:SignatureMethod", NS)), "sha1: rsa-sha1")
        check(xmlsec_verify(x, idp_crt, RESPONSE_NODE, r.get("ID"), work), "sha1 verifies with the IdP cert")
        check(not xmlsec_verify(x, att_crt, RESPONSE_NODE, r.get("ID"), work), "sha1 does not verify with the attacker cert")
        for case in ("other_key", "embedded_cert"):
            x = responses[case]
            r = corpus.parse(x)
            ra = r.find("saml:Assertion", NS)
            check(not xmlsec_verify(x, idp_crt, RESPONSE_NODE, r.get("ID"), work), f"{case}: not with the IdP cert")
            check(xmlsec_verify(x, att_crt, RESPONSE_NODE, r.get("ID"), work), f"{case}: response verifies with attacker")
            check(xmlsec_verify(x, att_crt, ASSERTION_NODE, ra.get("ID"), work), f"{case}: assertion verifies with attacker")
            kic = r.find("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS).text
            idp_b64 = "".join(open(idp_crt).read().splitlines()[1:-1])
            check((kic == idp_b64) == (case == "other_key"), f"{case}: KeyInfo cert is the {'IdP' if case == 'other_key' else 'attacker'}'s")
        x = responses["comment_injection"]
        r = corpus.parse(x)
        check(b"alice@corp.example<!---->.evil.test</saml:NameID>" in x, "comment_injection: NameID split by a comment")
        check(xmlsec_verify(x, idp_crt, ASSERTION_NODE, r.find("saml:Assertion", NS).get("ID"), work),
              "comment_injection: assertion signature still verifies")
        check(xmlsec_verify(x, idp_crt, RESPONSE_NODE, r.get("ID"), work), "comment_injection: response signature still verifies")
        check(b"Signature" not in responses["unsigned"], "unsigned: no ds:Signature")

        print("XSW cases")
        for case in ("xsw1", "xsw2", "xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8"):
            r = corpus.parse(responses[case])
            nids = [n.text for n in r.iter(f"{{{corpus.SAML}}}NameID")]
            sigs = len(list(r.iter(f"{{{corpus.DS}}}Signature")))
            check(corpus.EVIL_NAME_ID in nids and "alice@corp.example" in nids and sigs == 1,
                  f"{case}: NameIDs {nids}, {sigs} signature")
        r = corpus.parse(responses["xsw1"])
        check(r.find("ds:Signature/samlp:Response", NS) is not None, "xsw1: genuine Response inside ds:Signature")
        r = corpus.parse(responses["xsw2"])
        check(r.find("samlp:Response", NS) is not None and r.find("ds:Signature/samlp:Response", NS) is None,
              "xsw2: genuine Response is a detached sibling")
        r = corpus.parse(responses["xsw3"])
        aa = r.findall("saml:Assertion", NS)
        check(len(aa) == 2 and aa[0].find("ds:Signature", NS) is None and aa[1].find("ds:Signature", NS) is not None,
              "xsw3: evil assertion before the signed one")
        r = corpus.parse(responses["xsw4"])
        check(r.find("saml:Assertion/saml:Assertion/ds:Signature", NS) is not None, "xsw4: evil wraps the signed one")
        r = corpus.parse(responses["xsw5"])
        aa = r.findall("saml:Assertion", NS)
        check(len(aa) == 2 and aa[0].find("ds:Signature", NS) is not None and aa[1].find("ds:Signature", NS) is None,
              "xsw5: evil carries the signature, genuine copy at the end")
        r = corpus.parse(responses["xsw6"])
        check(r.find("saml:Assertion/ds:Signature/saml:Assertion", NS) is not None, "xsw6: genuine inside the Signature")
        r = corpus.parse(responses["xsw7"])
        check(r.find("samlp:Extensions/saml:Assertion/ds:Signature", NS) is not None, "xsw7: genuine in Extensions")
        r = corpus.parse(responses["xsw8"])
        check(r.find("saml:Assertion/ds:Signature/ds:Object/saml:Assertion", NS) is not None, "xsw8: genuine in ds:Object")
        # The genuine signature is still in every XSW document and its SignatureValue and digest
        # are those the IdP made. xmlsec1 (a spec-exact verifier) accepts it where the referenced
        # copy lies outside the ds:Signature (xsw2-5, xsw7); for xsw1/6/8 the copy sits inside the
        # Signature, which the enveloped-signature transform removes whole, so xmlsec1 finds a
        # digest mismatch, while a verifier that only strips the referenced element's own
        # Signature child (a common shortcut) accepts it. Both views are checked.
        sig = "*[local-name()='Signature']"
        ass = "*[local-name()='Assertion']"
        where = {
            "xsw1": f"/*/{sig}", "xsw2": f"/*/{sig}",
            "xsw3": f"/*/{ass}[2]/{sig}", "xsw4": f"/*/{ass}/{ass}/{sig}",
            "xsw5": f"/*/{ass}[1]/{sig}", "xsw6": f"/*/{ass}/{sig}",
            "xsw7": f"/*/*[local-name()='Extensions']/{ass}/{sig}", "xsw8": f"/*/{ass}/{sig}",
        }
        idp_pub = x509.load_pem_x509_certificate(open(idp_crt, "rb").read()).public_key()
        for case, xpath in where.items():
            strict = xmlsec_verify_xpath(responses[case], idp_crt, xpath, work)
            check(strict == (case not in ("xsw1", "xsw6", "xsw8")),
                  f"{case}: xmlsec1 {'accepts' if strict else 'rejects'} the genuine signature")
            check(naive_verify(responses[case], xpath, idp_pub),
                  f"{case}: the genuine signature verifies for a strip-own-Signature verifier")

        print("value cases (all genuinely signed)")
        for case in ("expired", "not_yet_valid", "wrong_audience", "wrong_destination", "wrong_recipient",
                     "unknown_in_response_to", "unsolicited", "status_not_success", "oversized"):
            x = responses[case]
            r = corpus.parse(x)
            check(xmlsec_verify(x, idp_crt, RESPONSE_NODE, r.get("ID"), work), f"{case}: response signature verifies")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = corpus.parse(responses["expired"])
        check(r.find("saml:Assertion/saml:Conditions", NS).get("NotOnOrAfter") < now, "expired: NotOnOrAfter in the past")
        r = corpus.parse(responses["not_yet_valid"])
        check(r.find("saml:Assertion/saml:Conditions", NS).get("NotBefore") > now, "not_yet_valid: NotBefore ahead")
        r = corpus.parse(responses["wrong_audience"])
        check(r.find(".//saml:Audience", NS).text == corpus.OTHER_AUDIENCE, "wrong_audience")
        check(corpus.parse(responses["wrong_destination"]).get("Destination") == corpus.OTHER_URL, "wrong_destination")
        r = corpus.parse(responses["wrong_recipient"])
        check(r.find(".//saml:SubjectConfirmationData", NS).get("Recipient") == corpus.OTHER_URL, "wrong_recipient")
        r = corpus.parse(responses["unknown_in_response_to"])
        irt = r.get("InResponseTo")
        check(irt not in (None, rid) and r.find(".//saml:SubjectConfirmationData", NS).get("InResponseTo") == irt,
              "unknown_in_response_to")
        check(b"InResponseTo" not in responses["unsolicited"], "unsolicited: no InResponseTo")
        r = corpus.parse(responses["status_not_success"])
        codes = [c.get("Value").rsplit(":", 1)[1] for c in r.iter(f"{{{corpus.SAMLP}}}StatusCode")]
        check(codes == ["Responder", "AuthnFailed"] and r.find("saml:Assertion", NS) is None, f"status {codes}")
        check(380 * 1024 < sizes["oversized"] < 420 * 1024, f"oversized: {sizes['oversized']} bytes")

        print("parser cases")
        check(b'<!ENTITY xxe SYSTEM "file:///etc/passwd">' in responses["doctype_xxe"] and b"&xxe;" in responses["doctype_xxe"], "doctype_xxe")
        check(responses["billion_laughs"].count(b"<!ENTITY lol") == 10 and b"&lol9;" in responses["billion_laughs"], "billion_laughs")
        check(b"XInclude" in responses["xinclude"] and b"file:///etc/passwd" in responses["xinclude"], "xinclude")
        check(responses["deep_nesting"].count(b"<n:e>") == 5000, "deep_nesting: 5000 nested elements")
        for case in ("doctype_xxe", "billion_laughs", "xinclude", "deep_nesting"):
            try:
                etree.fromstring(responses[case], etree.XMLParser(resolve_entities=False, no_network=True))
                parsed = True
            except etree.XMLSyntaxError:
                parsed = False
            print(f"       {case}: a default lxml parser {'parses it' if parsed else 'refuses it'}")

        print("encryption")
        http("POST", base + "/next", json.dumps({"encrypt": True}).encode(), "application/json")
        _h, _a, _f, x = signin(None)
        r = corpus.parse(x)
        check(r.find("saml:EncryptedAssertion", NS) is not None and r.find("saml:Assertion", NS) is None, "EncryptedAssertion")
        em = [m.get("Algorithm") for m in r.iter("{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod")]
        print("       algorithms:", em)
        check(xmlsec_verify(x, idp_crt, RESPONSE_NODE, r.get("ID"), work), "encrypted: response signature verifies")
        dec = xmlsec_decrypt(x, sp_key_path, work)
        check(dec is not None and b"alice@corp.example" in dec, "decrypts with the SP key")
        if dec:
            d = corpus.parse(dec)
            da = d.find("saml:EncryptedAssertion/saml:Assertion", NS)
            check(da is not None and xmlsec_verify(etree.tostring(da), idp_crt, ASSERTION_NODE, da.get("ID"), work),
                  "decrypted assertion's signature verifies standalone")
        check(xmlsec_decrypt(x, att_key, work) is None, "does not decrypt with the attacker key")
        _h, _a, _f, x = signin("encrypted_other_key")
        check(xmlsec_decrypt(x, sp_key_path, work) is None, "encrypted_other_key: not with the SP key")
        check(xmlsec_decrypt(x, att_key, work) is not None, "encrypted_other_key: decrypts with the attacker key")
        _h, _a, _f, x = signin("xsw3")
        check(b"EncryptedAssertion" not in x, "xsw3 ignores encrypt")
        http("POST", base + "/reset")

        print("HTTP-POST binding, IdP-initiated, errors")
        post_req = base64.b64encode(authn_request(SP_EID, SP_ACS, base + "/sso/post", "_postreq").encode()).decode()
        st, h, page = http("POST", base + "/sso/post", urllib.parse.urlencode({"SAMLRequest": post_req}).encode(),
                           "application/x-www-form-urlencoded")
        check(st == 200 and b"RelayState" not in page, "POST binding, no RelayState when none was sent")
        if st == 200:
            check(corpus.parse(base64.b64decode(form_fields(page)[1]["SAMLResponse"])).get("InResponseTo") == "_postreq",
                  "POST binding InResponseTo")
        st, h, page = http("GET", base + "/idp-initiated?" + urllib.parse.urlencode({"sp": SP_EID}))
        check(st == 200 and b"RelayState" not in page and b"InResponseTo" not in base64.b64decode(form_fields(page)[1]["SAMLResponse"]),
              "idp-initiated: unsolicited, no RelayState")
        st, _h, b = http("GET", base + "/idp-initiated?sp=nobody")
        check(st == 400, f"unknown SP -> 400 ({b.decode().strip()[:70]})")
        st, _h, b = http("GET", base + "/sso/redirect?SAMLRequest=bm9wZQ%3D%3D")
        check(st == 400, f"garbage AuthnRequest -> 400 ({b.decode().strip()[:70]})")
        st, _h, b = http("POST", base + "/next", b'{"case": "nope"}', "application/json")
        check(st == 400, "unknown case -> 400")

        print("AuthnRequestsSigned=true")
        sreq = deflate_b64(authn_request(SIGNED_SP_EID, SIGNED_SP_ACS, base + "/sso/redirect", "_signed1"))
        st, _h, b = http("GET", base + "/sso/redirect?" + urllib.parse.urlencode({"SAMLRequest": sreq}))
        check(st == 400, f"unsigned redirect refused ({b.decode().strip()[:70]})")
        sigalg = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        octets = urllib.parse.urlencode({"SAMLRequest": sreq, "RelayState": "r1", "SigAlg": sigalg})
        sig = base64.b64encode(sp_key.sign(octets.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        st, _h, b = http("GET", base + "/sso/redirect?" + octets + "&" + urllib.parse.urlencode({"Signature": sig}))
        check(st == 200, f"signed redirect accepted ({st})")
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        bad = base64.b64encode(other.sign(octets.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
        st, _h, b = http("GET", base + "/sso/redirect?" + octets + "&" + urllib.parse.urlencode({"Signature": bad}))
        check(st == 400, f"badly signed redirect refused ({b.decode().strip()[:70]})")
    finally:
        proc.stdin.close()  # EOF on stdin: the IdP exits
        try:
            proc.wait(timeout=10)
            print(f"idp exited on stdin EOF with {proc.returncode}")
        except subprocess.TimeoutExpired:
            failures.append("idp did not exit on stdin EOF")
            proc.kill()

    print()
    if failures:
        print(f"{len(failures)} FAILED: {failures}\n(idp log: {work}/idp.log)")
        return 1
    print(f"selfcheck passed ({len(corpus.CASES)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
