-- The IdP's SingleLogoutService (HTTP-Redirect): where Latchkey sends LogoutRequests and
-- LogoutResponses. NULL: the IdP takes no logout from Latchkey.
ALTER TABLE saml_connections ADD COLUMN slo_url TEXT;
ALTER TABLE saml_connections ADD COLUMN slo_response_url TEXT;
