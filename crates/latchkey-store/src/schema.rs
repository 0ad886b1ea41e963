//! Table definitions shared by both dialects (see `migrations/`).

diesel::table! {
    tenants (id) {
        id -> Text,
        slug -> Text,
        display_name -> Text,
        policy -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        tenant_id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        display_name -> Nullable<Text>,
        status -> Text,
        password_hash -> Nullable<Text>,
        password_changed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        sessions_not_before -> Nullable<BigInt>,
        email_verified -> Bool,
        deletion_due_at -> Nullable<BigInt>,
        profile_sealed -> Nullable<Text>,
        deletion_reason -> Nullable<Text>,
    }
}

diesel::table! {
    user_keys (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        key_sealed -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_roles (tenant_id, user_id, role_id) {
        tenant_id -> Text,
        user_id -> Text,
        role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        client_type -> Text,
        auth_method -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        access_token_format -> Text,
        require_pkce -> Bool,
        introspect_others -> Bool,
        first_party -> Bool,
        jwks_uri -> Nullable<Text>,
        jwks -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        settings -> Text,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    admin_tokens (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        roles -> Text,
        permissions -> Text,
        token_hash -> Nullable<Text>,
        client_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    system_tokens (id) {
        id -> Text,
        name -> Text,
        roles -> Text,
        permissions -> Text,
        token_hash -> Nullable<Text>,
        user_tenant_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    admin_roles (tenant_id, name) {
        tenant_id -> Text,
        name -> Text,
        description -> Text,
        permissions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    password_history (tenant_id, user_id, created_at) {
        tenant_id -> Text,
        user_id -> Text,
        hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    master_key_checks (kek_id) {
        kek_id -> Text,
        check_value -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    data_keys (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        kek_id -> Text,
        wrapped -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    pairwise_salts (tenant_id) {
        tenant_id -> Text,
        salt_sealed -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (tenant_id, kid) {
        tenant_id -> Text,
        kid -> Text,
        alg -> Text,
        key_use -> Text,
        state -> Text,
        public_jwk -> Text,
        private_key -> Text,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        removed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_heads (tenant_id) {
        tenant_id -> Text,
        seq -> BigInt,
        hash -> Text,
        anchor_seq -> BigInt,
        anchor_hash -> Text,
    }
}

diesel::table! {
    risk_history (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        history_sealed -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    user_activity (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        last_sign_in_at -> BigInt,
        notified_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    user_terms (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        version -> Text,
        accepted_at -> BigInt,
    }
}

diesel::table! {
    audit_events (tenant_id, seq) {
        tenant_id -> Text,
        seq -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        outcome -> Text,
        details -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    password_resets (tenant_id, token_hash) {
        tenant_id -> Text,
        token_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        browser_hash -> Nullable<Text>,
    }
}

diesel::table! {
    email_verifications (tenant_id, token_hash) {
        tenant_id -> Text,
        token_hash -> Text,
        user_id -> Text,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        tenant_id -> Text,
        recipient -> Text,
        subject -> Text,
        body_sealed -> Nullable<Text>,
        created_at -> BigInt,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        channel -> Text,
    }
}

diesel::table! {
    oauth_grants (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_key -> Nullable<Text>,
        scope -> Text,
        auth_time -> BigInt,
        acr -> Nullable<Text>,
        amr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_codes (tenant_id, code_hash) {
        tenant_id -> Text,
        code_hash -> Text,
        grant_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Nullable<Text>,
        nonce -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_tokens (tenant_id, handle) {
        tenant_id -> Text,
        handle -> Text,
        kind -> Text,
        grant_id -> Nullable<Text>,
        client_id -> Text,
        user_id -> Nullable<Text>,
        scope -> Text,
        audience -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_consents (tenant_id, user_id, client_id) {
        tenant_id -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    mfa_totp (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        seed_sealed -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mfa_recovery_codes (tenant_id, user_id, code_hash) {
        tenant_id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mfa_passkeys (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        user_id -> Text,
        name -> Text,
        credential -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    saml_connections (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        name -> Text,
        display_name -> Text,
        idp_entity_id -> Text,
        sso_url -> Text,
        sso_binding -> Text,
        idp_certificates -> Text,
        wants_signed_requests -> Bool,
        metadata_url -> Nullable<Text>,
        options -> Text,
        sp_certificate -> Text,
        sp_key_sealed -> Text,
        metadata_refreshed_at -> Nullable<BigInt>,
        metadata_error -> Nullable<Text>,
        next_refresh_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        slo_url -> Nullable<Text>,
        slo_response_url -> Nullable<Text>,
    }
}

diesel::table! {
    saml_identities (tenant_id, connection_id, name_id) {
        tenant_id -> Text,
        connection_id -> Text,
        name_id -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        name_id_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    groups (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    group_parents (tenant_id, group_id) {
        tenant_id -> Text,
        group_id -> Text,
        parent_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_groups (tenant_id, user_id, group_id) {
        tenant_id -> Text,
        user_id -> Text,
        group_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    group_roles (tenant_id, group_id, role_id) {
        tenant_id -> Text,
        group_id -> Text,
        role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    client_roles (id) {
        id -> Text,
        tenant_id -> Text,
        client_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_client_roles (tenant_id, user_id, client_role_id) {
        tenant_id -> Text,
        user_id -> Text,
        client_role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    group_client_roles (tenant_id, group_id, client_role_id) {
        tenant_id -> Text,
        group_id -> Text,
        client_role_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    invitations (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        email -> Text,
        username -> Nullable<Text>,
        display_name -> Nullable<Text>,
        groups -> Text,
        token_hash -> Text,
        invited_by -> Text,
        created_at -> BigInt,
        sent_at -> BigInt,
        expires_at -> BigInt,
        accepted_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        user_id -> Nullable<Text>,
    }
}

diesel::table! {
    attribute_defs (tenant_id, name) {
        tenant_id -> Text,
        name -> Text,
        label -> Nullable<Text>,
        kind -> Text,
        required -> Bool,
        is_unique -> Bool,
        editable_by -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    user_attributes (tenant_id, user_id, name) {
        tenant_id -> Text,
        user_id -> Text,
        name -> Text,
        value -> Text,
        unique_key -> Nullable<Text>,
        updated_at -> BigInt,
        value_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    tenant_domains (tenant_id, domain) {
        tenant_id -> Text,
        domain -> Text,
        method -> Text,
        token -> Text,
        verified_at -> Nullable<BigInt>,
        last_checked_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    changes (id) {
        id -> BigInt,
        tenant_id -> Text,
        kind -> Text,
        subject -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    oidc_connections (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        name -> Text,
        display_name -> Text,
        config -> Text,
        secret_sealed -> Text,
        discovered -> Nullable<Text>,
        discovery_error -> Nullable<Text>,
        next_refresh_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    oidc_identities (tenant_id, connection_id, subject) {
        tenant_id -> Text,
        connection_id -> Text,
        subject -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        subject_sealed -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    mfa_passkeys,
    mfa_totp,
    mfa_recovery_codes,
    oauth_grants,
    oauth_codes,
    oauth_tokens,
    oauth_consents,
    tenants,
    users,
    user_keys,
    roles,
    user_roles,
    clients,
    admin_tokens,
    admin_roles,
    system_tokens,
    password_history,
    password_resets,
    email_verifications,
    mail_outbox,
    master_key_checks,
    data_keys,
    pairwise_salts,
    signing_keys,
    audit_heads,
    audit_events,
    risk_history,
    user_terms,
    user_activity,
    saml_connections,
    saml_identities,
    oidc_connections,
    oidc_identities,
    groups,
    group_parents,
    user_groups,
    group_roles,
    client_roles,
    user_client_roles,
    group_client_roles,
    invitations,
    attribute_defs,
    user_attributes,
    tenant_domains
);
