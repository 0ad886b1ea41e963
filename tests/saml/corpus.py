"""The attack corpus of the test IdP (tests/saml/idp.py).

Every case starts from the genuine response the IdP builds for the AuthnRequest at hand (same
InResponseTo, Destination, Audience, Recipient, signed by the IdP key with RSA-SHA256 / SHA-256
digests and exclusive c14n), then changes it. Cases of the first kind change a value *before* the
IdP signs (``overrides``), so the signature over the bad value is genuine; cases of the second
kind change the *signed* XML afterwards (``mutate``), so the genuine signature stays in the
document but no longer covers what an SP that trusts the wrong element would read.

"Reject" below means: the SP must not sign anybody in, must not create or link an account, and
should answer with an error page (and an audit event), never a 5xx crash or a hang.

XML Signature Wrapping (Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be", USENIX
Security 2012; the XSW1-XSW8 numbering of the SAML Raider Burp extension). The "evil" element is
a copy of the genuine one whose NameID (and every AttributeValue equal to the genuine NameID,
e.g. ``mail``) says ``admin@corp.example`` and whose ID is a fresh ``_evil_...`` id.

  xsw1   sign=response. The root becomes the evil Response (new ID, evil assertion) still carrying
         the genuine ds:Signature; a copy of the genuine signed Response (its own Signature
         removed) is appended *inside* that ds:Signature, where the Reference URI finds it.
         Reject: the signed element is not the Response being processed.
  xsw2   sign=response. Same, but the genuine Response copy is a detached sibling: inserted in
         the evil Response just before the ds:Signature. Reject.
  xsw3   sign=assertion. An unsigned evil Assertion is inserted before the genuine signed one
         (two assertions; the first one is evil). Reject (exactly one assertion, and it must be
         the signed one).
  xsw4   sign=assertion. The evil Assertion takes the genuine one's place and wraps it: the
         genuine signed Assertion becomes the last child of the evil one. Reject.
  xsw5   sign=assertion. The Assertion in place is turned evil but keeps the genuine
         ds:Signature; an unsigned copy of the genuine Assertion is appended at the end of the
         Response (that is what the Reference points to). Reject.
  xsw6   sign=assertion. Like xsw5, but the genuine copy is appended inside the evil Assertion's
         ds:Signature. Reject.
  xsw7   sign=assertion. The genuine signed Assertion is moved into a samlp:Extensions element
         (right after the Response's Issuer, where the schema allows it, with lax content);
         the unsigned evil Assertion stands where the genuine one was. Reject.
  xsw8   sign=assertion. The evil Assertion in place keeps the genuine ds:Signature, which gets
         a ds:Object holding an unsigned copy of the genuine Assertion. Reject.

In every XSW document the genuine ds:Signature (SignatureValue and DigestValue as the IdP made
them) is still there. For xsw2-5 and xsw7 the referenced genuine copy lies outside the
Signature, and a spec-exact verifier (xmlsec1) accepts the signature. For xsw1, xsw6 and xsw8
the copy sits inside the ds:Signature, which the enveloped-signature transform removes whole, so
xmlsec1 reports a digest mismatch; a verifier that implements that transform as "strip the
referenced element's own Signature child" (a common shortcut) accepts it. selfcheck.py checks
both views. Either way the SP must reject.

Other signature attacks:

  comment_injection  The IdP genuinely signs NameID ``alice@corp.example.evil.test`` (and any
         attribute value equal to the configured NameID gets the same suffix), then a comment is
         inserted: ``alice@corp.example<!---->.evil.test``. The signature stays valid (exclusive
         c14n without comments drops comments). The SP must read the full text
         ``alice@corp.example.evil.test`` (all text nodes) and so NOT sign in alice; reading only
         the first text node would make it alice.
  unsigned       Every ds:Signature removed. Reject (an SP must require a signature covering
         the assertion, response- or assertion-level).
  other_key      Signed by the attacker key, but KeyInfo carries the IdP's genuine certificate.
         Reject (verify with the key from metadata, never with what KeyInfo says).
  embedded_cert  Signed by the attacker key with the attacker's certificate in KeyInfo.
         Reject (a certificate in the message is not a trust anchor).
  sha1           Genuinely signed by the IdP key with rsa-sha1 and sha1 digests. Reject if the SP
         refuses SHA-1 (Latchkey does); accepting it is a policy choice, not a forgery.

Genuinely signed by the IdP key, built with the bad value:

  expired            Conditions and SubjectConfirmationData NotOnOrAfter 10 min ago,
                     IssueInstant / AuthnInstant / NotBefore 20 min ago. Reject (beyond skew).
  not_yet_valid      Conditions NotBefore 10 min ahead (NotOnOrAfter 15 min ahead). Reject.
  wrong_audience     Audience ``https://other-sp.example/metadata``. Reject.
  wrong_destination  Response Destination another URL. Reject.
  wrong_recipient    SubjectConfirmationData Recipient another URL. Reject.
  unknown_in_response_to  InResponseTo (Response and SubjectConfirmationData) a fresh random
                     ``_...`` id the SP never issued. Reject.
  unsolicited        No InResponseTo anywhere (IdP-initiated shape). Reject unless the
                     connection allows IdP-initiated sign-in.
  status_not_success StatusCode Responder with a nested AuthnFailed, no assertion, Response
                     signed. Reject with a "the IdP refused" error, no account touched.

Parser attacks (the signature is irrelevant; what matters is the XML parser):

  doctype_xxe     A DOCTYPE declaring external entity ``xxe`` = ``file:///etc/passwd``, used as
                  NameID. Reject before expanding anything (no DTDs at all).
  billion_laughs  The classic 10-level internal entity expansion (lol .. lol9) used as NameID.
                  Reject quickly without expanding (no DTDs).
  xinclude        An ``xi:include href="file:///etc/passwd" parse="text"`` as the NameID's
                  content. Never process XInclude; reject (the signature no longer verifies).
  deep_nesting    5,000 nested elements inside a samlp:Extensions before Status. Reject without
                  a stack overflow (bounded depth).
  oversized       A genuine, validly signed response padded with an attribute value so the
                  decoded XML is about 400 KiB. Reject by size before parsing if the SP has a
                  limit below that (Latchkey's is documented with the SP), without a crash.

Encryption:

  encrypted_other_key  The assertion (signed) is encrypted to the attacker's certificate instead
                  of the SP's. The SP cannot decrypt it: reject cleanly.

``overrides(case)`` returns what the builder changes before signing; ``mutate(case, xml, ctx)``
changes the signed XML. Cases that need the assertion in clear force ``encrypt`` off (see
``NO_ENCRYPT``).
"""

from __future__ import annotations

import copy
import secrets

from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XI = "http://www.w3.org/2001/XInclude"

EVIL_NAME_ID = "admin@corp.example"
OTHER_AUDIENCE = "https://other-sp.example/metadata"
OTHER_URL = "https://evil.example/saml/acs"
COMMENT_SUFFIX = ".evil.test"

CASES = [
    "xsw1", "xsw2", "xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8",
    "comment_injection", "unsigned", "other_key", "embedded_cert", "sha1",
    "expired", "not_yet_valid", "wrong_audience", "wrong_destination", "wrong_recipient",
    "unknown_in_response_to", "unsolicited", "status_not_success",
    "doctype_xxe", "billion_laughs", "xinclude", "deep_nesting", "oversized",
    "encrypted_other_key",
]

# Cases whose mutation needs the Assertion in clear: `encrypt` is ignored for them.
NO_ENCRYPT = {
    "xsw1", "xsw2", "xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8",
    "comment_injection", "unsigned", "doctype_xxe", "billion_laughs", "xinclude",
}

SIG_RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
DIGEST_SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"

OVERSIZED_BYTES = 400 * 1024


def overrides(case: str | None) -> dict:
    """What the builder sets before signing. Keys (all optional):

    sign            force "assertion" / "response" / "both"
    encrypt         force encryption on (True) or off (False)
    encrypt_to      "attacker": encrypt to the attacker's certificate
    signer          "attacker_idp_cert" (attacker key, IdP cert in KeyInfo) or
                    "attacker" (attacker key and cert)
    sign_alg, digest_alg
    issue_shift     seconds added to IssueInstant (Response, Assertion) and AuthnInstant
    not_before_shift      Conditions NotBefore = now + this
    not_on_or_after_shift Conditions and SubjectConfirmationData NotOnOrAfter = now + this
    audience, destination, recipient
    in_response_to  "none" (omit everywhere) or "random"
    status_not_success  True
    name_id_suffix  appended to the NameID (and attribute values equal to it)
    pad_to          pad with an attribute so the XML is about this many bytes
    """
    if case is None:
        return {}
    if case in ("xsw1", "xsw2"):
        return {"sign": "response"}
    if case in ("xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8"):
        return {"sign": "assertion"}
    return {
        "comment_injection": {"name_id_suffix": COMMENT_SUFFIX},
        "other_key": {"signer": "attacker_idp_cert"},
        "embedded_cert": {"signer": "attacker"},
        "sha1": {"sign_alg": SIG_RSA_SHA1, "digest_alg": DIGEST_SHA1},
        "expired": {"issue_shift": -1200, "not_before_shift": -1200, "not_on_or_after_shift": -600},
        "not_yet_valid": {"not_before_shift": 600, "not_on_or_after_shift": 900},
        "wrong_audience": {"audience": OTHER_AUDIENCE},
        "wrong_destination": {"destination": OTHER_URL},
        "wrong_recipient": {"recipient": OTHER_URL},
        "unknown_in_response_to": {"in_response_to": "random"},
        "unsolicited": {"in_response_to": "none"},
        "status_not_success": {"status_not_success": True},
        "oversized": {"pad_to": OVERSIZED_BYTES},
        "encrypted_other_key": {"encrypt": True, "encrypt_to": "attacker"},
    }.get(case, {})


def random_id() -> str:
    return "_" + secrets.token_hex(16)


# --------------------------------------------------------------------------------------------
# helpers on lxml trees


def parse(xml: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    return etree.fromstring(xml, parser)


def serialize(root: etree._Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _direct_signature(el: etree._Element):
    return el.find(_q(DS, "Signature"))


def _strip_direct_signature(el: etree._Element) -> etree._Element:
    sig = _direct_signature(el)
    if sig is not None:
        el.remove(sig)
    return el


def _assertion(root: etree._Element) -> etree._Element:
    a = root.find(_q(SAML, "Assertion"))
    if a is None:
        raise ValueError("the genuine response has no clear Assertion to mutate")
    return a


def _name_id(assertion: etree._Element) -> etree._Element:
    n = assertion.find(f"{_q(SAML, 'Subject')}/{_q(SAML, 'NameID')}")
    if n is None:
        raise ValueError("the assertion has no NameID")
    return n


def _evilize(assertion: etree._Element) -> etree._Element:
    """Turns an assertion (in place) into the evil one: admin NameID, new ID."""
    nid = _name_id(assertion)
    genuine = nid.text
    nid.text = EVIL_NAME_ID
    for v in assertion.iter(_q(SAML, "AttributeValue")):
        if v.text == genuine:
            v.text = EVIL_NAME_ID
    assertion.set("ID", "_evil_" + secrets.token_hex(12))
    return assertion


def _evil_copy(assertion: etree._Element) -> etree._Element:
    return _evilize(_strip_direct_signature(copy.deepcopy(assertion)))


def _genuine_copy(el: etree._Element) -> etree._Element:
    return _strip_direct_signature(copy.deepcopy(el))


def _with_doctype(root: etree._Element, marker: str, replacement: str, doctype_body: str) -> bytes:
    body = etree.tostring(root, encoding="unicode")
    qname = root.tag.split("}")[1]
    if root.prefix:
        qname = f"{root.prefix}:{qname}"
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!DOCTYPE {qname} [\n{doctype_body}]>\n" + body.replace(marker, replacement)
    )
    return text.encode("utf-8")


# --------------------------------------------------------------------------------------------
# mutations of the signed XML


def xsw1(root):
    # Response signature: evil Response (root, new ID, evil assertion) keeps the ds:Signature;
    # the genuine Response (without its Signature) goes inside that Signature.
    genuine = _genuine_copy(root)
    sig = _direct_signature(root)
    if sig is None:
        raise ValueError("xsw1 needs a signed Response")
    sig.append(genuine)
    root.set("ID", "_evil_" + secrets.token_hex(12))
    _evilize(_assertion(root))
    return root


def xsw2(root):
    # Response signature: the genuine Response copy is a detached sibling, before the Signature.
    genuine = _genuine_copy(root)
    sig = _direct_signature(root)
    if sig is None:
        raise ValueError("xsw2 needs a signed Response")
    sig.addprevious(genuine)
    root.set("ID", "_evil_" + secrets.token_hex(12))
    _evilize(_assertion(root))
    return root


def xsw3(root):
    # Assertion signature: unsigned evil Assertion before the genuine signed one.
    a = _assertion(root)
    a.addprevious(_evil_copy(a))
    return root


def xsw4(root):
    # Assertion signature: the evil Assertion wraps the genuine signed one.
    a = _assertion(root)
    evil = _evil_copy(a)
    root.replace(a, evil)
    evil.append(a)
    return root


def xsw5(root):
    # Assertion signature: evil Assertion in place carries the Signature; the genuine one
    # (unsigned copy) is appended at the end of the Response.
    a = _assertion(root)
    genuine = _genuine_copy(a)
    _evilize(a)
    root.append(genuine)
    return root


def xsw6(root):
    # Assertion signature: like xsw5, the genuine copy goes inside the evil one's Signature.
    a = _assertion(root)
    genuine = _genuine_copy(a)
    _evilize(a)
    _direct_signature(a).append(genuine)
    return root


def xsw7(root):
    # Assertion signature: the genuine signed Assertion moves into samlp:Extensions (after the
    # Response's Issuer); the unsigned evil Assertion takes its place.
    a = _assertion(root)
    evil = _evil_copy(a)
    root.replace(a, evil)
    ext = etree.Element(_q(SAMLP, "Extensions"))
    ext.append(a)
    issuer = root.find(_q(SAML, "Issuer"))
    anchor = _direct_signature(root)
    (anchor if anchor is not None else issuer).addnext(ext)
    return root


def xsw8(root):
    # Assertion signature: the evil Assertion keeps the Signature, which gets a ds:Object
    # holding an unsigned copy of the genuine Assertion.
    a = _assertion(root)
    genuine = _genuine_copy(a)
    _evilize(a)
    obj = etree.SubElement(_direct_signature(a), _q(DS, "Object"))
    obj.append(genuine)
    return root


def comment_injection(root):
    # The signed value is NAME + ".evil.test"; a comment splits it after NAME.
    for el in list(root.iter(_q(SAML, "NameID"), _q(SAML, "AttributeValue"))):
        if el.text and el.text.endswith(COMMENT_SUFFIX) and len(el) == 0:
            head = el.text[: -len(COMMENT_SUFFIX)]
            el.text = head
            c = etree.Comment("")
            c.tail = COMMENT_SUFFIX
            el.append(c)
    return root


def unsigned(root):
    for sig in list(root.iter(_q(DS, "Signature"))):
        sig.getparent().remove(sig)
    return root


def doctype_xxe(root):
    marker = "LATCHKEY-XXE-MARKER"
    _name_id(_assertion(root)).text = marker
    return _with_doctype(root, marker, "&xxe;", '  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n')


def billion_laughs(root):
    marker = "LATCHKEY-LOL-MARKER"
    _name_id(_assertion(root)).text = marker
    lines = ['  <!ENTITY lol "lol">\n']
    prev = "lol"
    for i in range(1, 10):
        lines.append(f'  <!ENTITY lol{i} "{("&" + prev + ";") * 10}">\n')
        prev = f"lol{i}"
    return _with_doctype(root, marker, "&lol9;", "".join(lines))


def xinclude(root):
    nid = _name_id(_assertion(root))
    nid.text = None
    etree.SubElement(nid, _q(XI, "include"), href="file:///etc/passwd", parse="text", nsmap={"xi": XI})
    return root


def deep_nesting(root, depth=5000):
    marker = "LATCHKEY-NEST-MARKER"
    ext = etree.Element(_q(SAMLP, "Extensions"), nsmap={"n": "urn:latchkey:test:nesting"})
    ext.append(etree.Comment(marker))
    status = root.find(_q(SAMLP, "Status"))
    status.addprevious(ext)
    body = serialize(root).decode("utf-8")
    nested = "<n:e>" * depth + "</n:e>" * depth
    return body.replace(f"<!--{marker}-->", nested).encode("utf-8")


MUTATIONS = {
    "xsw1": xsw1, "xsw2": xsw2, "xsw3": xsw3, "xsw4": xsw4,
    "xsw5": xsw5, "xsw6": xsw6, "xsw7": xsw7, "xsw8": xsw8,
    "comment_injection": comment_injection, "unsigned": unsigned,
    "doctype_xxe": doctype_xxe, "billion_laughs": billion_laughs,
    "xinclude": xinclude, "deep_nesting": deep_nesting,
}


def mutate(case: str | None, xml: bytes) -> bytes:
    """Applies the post-signing mutation of `case` (if it has one) to the signed XML."""
    fn = MUTATIONS.get(case or "")
    if fn is None:
        return xml
    out = fn(parse(xml))
    return out if isinstance(out, bytes) else serialize(out)
