#!/usr/bin/env bash
# Rebuilds the seed corpora from the test fixtures: the SAML documents signed by xmlsec1
# (crates/latchkey-saml/tests/fixtures), metadata in the shapes of the metadata tests, and the
# minted seeds of examples/seeds.rs (JWTs, client authentication, forms, WebAuthn, which also
# rewrites fixtures/webauthn/). The committed corpora are these seeds grown by the fuzzers and
# minimized with `cargo fuzz cmin`; run this only to start over.
set -euo pipefail
cd "$(dirname "$0")"
fixtures=../crates/latchkey-saml/tests/fixtures
mkdir -p corpus/saml_response corpus/saml_c14n corpus/saml_metadata
for f in "$fixtures"/signed-*.xml "$fixtures"/review/signed-*.xml; do
  cp "$f" corpus/saml_response/
  cp "$f" corpus/saml_c14n/
done
cp "$fixtures"/response.tmpl.xml "$fixtures"/review/*.tmpl.xml corpus/saml_c14n/
# The HTTP-POST binding: base64 of a signed response.
base64 -w0 "$fixtures"/signed-response.xml > corpus/saml_response/post-binding.b64

cert() { grep -v -- '-----' "$fixtures/$1" | tr -d '\n'; }
idp=$(cert idp.crt)
other=$(cert other.crt)
weak=$(cert weak1024.crt)
cat > corpus/saml_metadata/entra.xml <<XML
<?xml version="1.0" encoding="utf-8"?>
<EntityDescriptor ID="_e1" entityID="https://sts.windows.net/0000/" xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/><SignatureValue>AAAA</SignatureValue></Signature>
  <RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xsi:type="fed:SecurityTokenServiceType" protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>$other</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
  </RoleDescriptor>
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>
$idp
</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <KeyDescriptor use="encryption"><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>MIIBroken</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
    <SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/0000/saml2"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://login.microsoftonline.com/0000/saml2/post"/>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://login.microsoftonline.com/0000/saml2"/>
  </IDPSSODescriptor>
</EntityDescriptor>
XML
cat > corpus/saml_metadata/okta.xml <<XML
<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntityDescriptor entityID="http://www.okta.com/exk1"><md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>$idp</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://corp.okta.com/app/x/sso/saml"/></md:IDPSSODescriptor></md:EntityDescriptor></md:EntitiesDescriptor>
XML
cat > corpus/saml_metadata/weak-key.xml <<XML
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.corp.example/metadata"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>$weak</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.corp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>
XML
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lk-target-fuzz}" cargo run --quiet --example seeds
