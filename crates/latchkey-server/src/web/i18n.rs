//! Every string the sign-in pages show, in one catalogue: English and German, chosen by
//! `ui_locales` (OIDC Core §3.1.2.1) or `Accept-Language`.

pub struct Strings {
    pub lang: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_to: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub sign_in_button: &'static str,
    pub bad_credentials: &'static str,
    pub throttled: &'static str,
    pub busy: &'static str,
    pub form_expired: &'static str,
    pub account_title: &'static str,
    pub signed_in_as: &'static str,
    pub sign_out_button: &'static str,
    pub signed_out: &'static str,
    /// The page a test sign-in's window ends on (SAML onboarding).
    pub saml_test_title: &'static str,
    /// `{connection}`.
    pub saml_test_done: &'static str,
    pub saml_test_invalid: &'static str,
    pub change_password_title: &'static str,
    pub current_password_label: &'static str,
    pub new_password_label: &'static str,
    pub change_password_button: &'static str,
    pub password_changed: &'static str,
    pub wrong_current_password: &'static str,
    pub sessions_title: &'static str,
    pub this_device: &'static str,
    pub last_used: &'static str,
    pub sign_out_session_button: &'static str,
    pub sign_out_everywhere_button: &'static str,
    pub password_expired: &'static str,
    pub profile_title: &'static str,
    pub display_name_label: &'static str,
    pub email_label: &'static str,
    pub save_profile_button: &'static str,
    pub profile_saved: &'static str,
    pub password_reused: &'static str,
    pub forgot_link: &'static str,
    pub forgot_title: &'static str,
    pub forgot_intro: &'static str,
    pub send_link_button: &'static str,
    pub forgot_sent: &'static str,
    pub reset_title: &'static str,
    pub reset_button: &'static str,
    pub reset_invalid: &'static str,
    /// A live reset link opened in a browser that did not ask for it.
    pub reset_other_browser: &'static str,
    pub reset_done: &'static str,
    pub back_to_sign_in: &'static str,
    pub mail_reset_subject: &'static str,
    pub mail_reset_body: &'static str,
    pub interaction_expired: &'static str,
    pub policy_needs: &'static str,
    pub v_too_short: &'static str,
    pub v_too_long: &'static str,
    pub v_lowercase: &'static str,
    pub v_uppercase: &'static str,
    pub v_digit: &'static str,
    pub v_symbol: &'static str,
    pub v_common: &'static str,
    pub v_guessable: &'static str,
    pub v_identifier: &'static str,
    pub consent_title: &'static str,
    pub consent_intro: &'static str,
    pub consent_allow: &'static str,
    pub consent_deny: &'static str,
    pub scope_openid: &'static str,
    pub scope_profile: &'static str,
    pub scope_email: &'static str,
    pub scope_offline_access: &'static str,
    pub scope_roles: &'static str,
    pub details_title: &'static str,
    pub details_admin_only: &'static str,
    pub save_details_button: &'static str,
    pub scope_groups: &'static str,
    pub scope_other: &'static str,
    pub apps_title: &'static str,
    pub app_revoke_button: &'static str,
    pub no_apps: &'static str,
    pub logout_title: &'static str,
    pub logout_confirm: &'static str,
    pub second_factor_title: &'static str,
    pub second_factor_intro: &'static str,
    pub code_label: &'static str,
    pub verify_button: &'static str,
    pub bad_code: &'static str,
    pub code_reused: &'static str,
    pub recovery_intro: &'static str,
    pub recovery_label: &'static str,
    pub use_recovery_button: &'static str,
    pub bad_recovery: &'static str,
    pub authenticator_title: &'static str,
    pub enrol_intro: &'static str,
    pub enrol_required: &'static str,
    pub qr_alt: &'static str,
    pub cant_scan: &'static str,
    pub enrol_button: &'static str,
    pub totp_on: &'static str,
    pub totp_off: &'static str,
    pub set_up_link: &'static str,
    pub remove_button: &'static str,
    pub cannot_remove_last: &'static str,
    pub recovery_title: &'static str,
    pub recovery_left: &'static str,
    pub regenerate_button: &'static str,
    pub recovery_codes_intro: &'static str,
    pub continue_link: &'static str,
    pub mail_recovery_subject: &'static str,
    pub mail_recovery_body: &'static str,
    pub passkeys_title: &'static str,
    pub passkey_signin_button: &'static str,
    /// Followed by the connection's display name.
    pub saml_signin_with: &'static str,
    pub passkey_use_button: &'static str,
    pub passkey_add_button: &'static str,
    pub passkey_name_label: &'static str,
    pub passkey_rename_button: &'static str,
    pub passkey_none: &'static str,
    pub passkey_added: &'static str,
    pub request_error_title: &'static str,
    pub request_error_intro: &'static str,
}

pub static EN: Strings = Strings {
    lang: "en",
    sign_in_title: "Sign in",
    sign_in_to: "Sign in to",
    username_label: "Username or email",
    password_label: "Password",
    sign_in_button: "Sign in",
    bad_credentials: "The username or password is incorrect.",
    throttled: "Too many attempts. Please wait {secs} seconds and try again.",
    busy: "We are busy right now. Please try again in a few seconds.",
    form_expired: "This form has expired. Please try again.",
    account_title: "Your account",
    signed_in_as: "Signed in as",
    sign_out_button: "Sign out",
    signed_out: "You have been signed out.",
    saml_test_title: "Test sign-in finished",
    saml_test_done: "The test sign-in with {connection} has finished. Nobody was signed in. Close this window and return to the console to see the result.",
    saml_test_invalid: "This test sign-in has been started already or has expired. Start a new test from the console.",
    change_password_title: "Change password",
    current_password_label: "Current password",
    new_password_label: "New password",
    change_password_button: "Change password",
    password_changed: "Your password has been changed. Other sessions were signed out.",
    wrong_current_password: "The current password is incorrect.",
    sessions_title: "Where you are signed in",
    this_device: "this browser",
    last_used: "last used",
    sign_out_session_button: "Sign out this session",
    sign_out_everywhere_button: "Sign out everywhere",
    password_expired: "Your password has expired. Choose a new one to continue.",
    profile_title: "Profile",
    display_name_label: "Name",
    email_label: "Email",
    save_profile_button: "Save profile",
    profile_saved: "Your profile has been saved.",
    password_reused: "Choose a password you have not used recently.",
    forgot_link: "Forgot your password?",
    forgot_title: "Reset your password",
    forgot_intro: "Enter your username or email. If it belongs to an account with an email address, we send a link there to choose a new password.",
    send_link_button: "Send reset link",
    forgot_sent: "If that matches an account, a reset link is on its way. It works once, within 30 minutes.",
    reset_title: "Choose a new password",
    reset_button: "Set new password",
    reset_invalid: "This reset link is invalid, already used or expired. Request a new one.",
    reset_other_browser: "This reset link was requested in another browser. Open it in the browser where you asked for it, or request a new link here, on this device.",
    reset_done: "Your password has been reset and every session was signed out. Sign in with the new password.",
    back_to_sign_in: "Back to sign in",
    mail_reset_subject: "Reset your password for {tenant}",
    mail_reset_body: "Someone (hopefully you) asked to reset the password of {user} at {tenant}.\n\nTo choose a new password, open this link within 30 minutes. It works once:\n{link}\n\nIf you did not ask for this, ignore this mail: your password stays as it is.\n",
    interaction_expired: "This sign-in request has expired. Go back to the application and start again.",
    policy_needs: "The password needs",
    v_too_short: "at least {min} characters (it has {len})",
    v_too_long: "at most {max} characters",
    v_lowercase: "a lowercase letter",
    v_uppercase: "an uppercase letter",
    v_digit: "a digit",
    v_symbol: "a symbol",
    v_common: "not to be a commonly used or breached password",
    v_guessable: "to be harder to guess (avoid repeats, sequences and keyboard patterns)",
    v_identifier: "no part of the username or email",
    consent_title: "Allow access?",
    consent_intro: "{client} would like to:",
    consent_allow: "Allow",
    consent_deny: "Deny",
    scope_openid: "Know who you are",
    scope_profile: "See your name and username",
    scope_email: "See your email address",
    scope_offline_access: "Keep access after you sign out",
    scope_roles: "See your roles",
    details_title: "Your details",
    details_admin_only: "Set by your administrator",
    save_details_button: "Save details",
    scope_groups: "See the groups you are in",
    scope_other: "Use “{scope}”",
    apps_title: "Connected applications",
    app_revoke_button: "Remove access",
    no_apps: "No application has access yet.",
    logout_title: "Sign out",
    logout_confirm: "Do you want to sign out of {tenant}?",
    second_factor_title: "Two-step verification",
    second_factor_intro: "Enter the 6-digit code from your authenticator app.",
    code_label: "Authentication code",
    verify_button: "Verify",
    bad_code: "That code is not valid. Check that your device's clock is right and try again.",
    code_reused: "That code was already used. Wait for the next one.",
    recovery_intro: "Lost your device? Use one of your recovery codes.",
    recovery_label: "Recovery code",
    use_recovery_button: "Use recovery code",
    bad_recovery: "That recovery code is not valid or was already used.",
    authenticator_title: "Authenticator app",
    enrol_intro: "Scan this QR code with your authenticator app (for example Google Authenticator or FreeOTP), then enter the code it shows.",
    enrol_required: "Your organisation requires two-step verification. Set up an authenticator app to continue.",
    qr_alt: "QR code for your authenticator app",
    cant_scan: "Can't scan it? Enter this key in the app:",
    enrol_button: "Turn on",
    totp_on: "Your authenticator app is set up.",
    totp_off: "No authenticator app is set up.",
    set_up_link: "Set up an authenticator app",
    remove_button: "Remove",
    cannot_remove_last: "Two-step verification is required here, so your only second factor can't be removed.",
    recovery_title: "Recovery codes",
    recovery_left: "Recovery codes left: {n}",
    regenerate_button: "Generate new recovery codes",
    recovery_codes_intro: "Save these recovery codes somewhere safe. Each one works once, and they are shown only now.",
    continue_link: "Continue",
    mail_recovery_subject: "A recovery code was used",
    mail_recovery_body: "A recovery code was just used to sign in to your {tenant} account. If this wasn't you, contact your administrator now.",
    passkeys_title: "Passkeys",
    passkey_signin_button: "Sign in with a passkey",
    saml_signin_with: "Sign in with",
    passkey_use_button: "Use a passkey",
    passkey_add_button: "Add a passkey",
    passkey_name_label: "Name for the new passkey",
    passkey_rename_button: "Rename",
    passkey_none: "No passkey yet.",
    passkey_added: "Added",
    request_error_title: "This request can't be completed",
    request_error_intro: "The application sent an invalid sign-in request. Go back to it and try again; if this keeps happening, tell its operator.",
};

pub static DE: Strings = Strings {
    lang: "de",
    sign_in_title: "Anmelden",
    sign_in_to: "Anmelden bei",
    username_label: "Benutzername oder E-Mail",
    password_label: "Passwort",
    sign_in_button: "Anmelden",
    bad_credentials: "Benutzername oder Passwort ist falsch.",
    throttled: "Zu viele Versuche. Bitte warten Sie {secs} Sekunden und versuchen Sie es erneut.",
    busy: "Gerade ist viel los. Bitte versuchen Sie es in einigen Sekunden erneut.",
    form_expired: "Dieses Formular ist abgelaufen. Bitte versuchen Sie es erneut.",
    account_title: "Ihr Konto",
    signed_in_as: "Angemeldet als",
    sign_out_button: "Abmelden",
    signed_out: "Sie wurden abgemeldet.",
    saml_test_title: "Testanmeldung beendet",
    saml_test_done: "Die Testanmeldung mit {connection} ist beendet. Niemand wurde angemeldet. Schließen Sie dieses Fenster und kehren Sie zur Konsole zurück, um das Ergebnis zu sehen.",
    saml_test_invalid: "Diese Testanmeldung wurde schon gestartet oder ist abgelaufen. Starten Sie in der Konsole einen neuen Test.",
    change_password_title: "Passwort ändern",
    current_password_label: "Aktuelles Passwort",
    new_password_label: "Neues Passwort",
    change_password_button: "Passwort ändern",
    password_changed: "Ihr Passwort wurde geändert. Andere Sitzungen wurden abgemeldet.",
    wrong_current_password: "Das aktuelle Passwort ist falsch.",
    sessions_title: "Wo Sie angemeldet sind",
    this_device: "dieser Browser",
    last_used: "zuletzt verwendet",
    sign_out_session_button: "Diese Sitzung abmelden",
    sign_out_everywhere_button: "Überall abmelden",
    password_expired: "Ihr Passwort ist abgelaufen. Wählen Sie ein neues, um fortzufahren.",
    profile_title: "Profil",
    display_name_label: "Name",
    email_label: "E-Mail",
    save_profile_button: "Profil speichern",
    profile_saved: "Ihr Profil wurde gespeichert.",
    password_reused: "Wählen Sie ein Passwort, das Sie nicht kürzlich verwendet haben.",
    forgot_link: "Passwort vergessen?",
    forgot_title: "Passwort zurücksetzen",
    forgot_intro: "Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein. Gehört sie zu einem Konto mit E-Mail-Adresse, senden wir dorthin einen Link, mit dem Sie ein neues Passwort wählen.",
    send_link_button: "Link senden",
    forgot_sent: "Falls das zu einem Konto passt, ist ein Link unterwegs. Er funktioniert einmal, innerhalb von 30 Minuten.",
    reset_title: "Neues Passwort wählen",
    reset_button: "Neues Passwort speichern",
    reset_invalid: "Dieser Link ist ungültig, schon benutzt oder abgelaufen. Fordern Sie einen neuen an.",
    reset_other_browser: "Dieser Link wurde in einem anderen Browser angefordert. Öffnen Sie ihn in dem Browser, in dem Sie ihn angefordert haben, oder fordern Sie hier auf diesem Gerät einen neuen an.",
    reset_done: "Ihr Passwort wurde zurückgesetzt und alle Sitzungen wurden abgemeldet. Melden Sie sich mit dem neuen Passwort an.",
    back_to_sign_in: "Zurück zur Anmeldung",
    mail_reset_subject: "Passwort für {tenant} zurücksetzen",
    mail_reset_body: "Jemand (hoffentlich Sie) möchte das Passwort von {user} bei {tenant} zurücksetzen.\n\nÖffnen Sie diesen Link innerhalb von 30 Minuten, um ein neues Passwort zu wählen. Er funktioniert einmal:\n{link}\n\nWenn Sie das nicht waren, ignorieren Sie diese E-Mail: Ihr Passwort bleibt unverändert.\n",
    interaction_expired: "Diese Anmeldeanfrage ist abgelaufen. Kehren Sie zur Anwendung zurück und beginnen Sie erneut.",
    policy_needs: "Das Passwort braucht",
    v_too_short: "mindestens {min} Zeichen (es hat {len})",
    v_too_long: "höchstens {max} Zeichen",
    v_lowercase: "einen Kleinbuchstaben",
    v_uppercase: "einen Großbuchstaben",
    v_digit: "eine Ziffer",
    v_symbol: "ein Sonderzeichen",
    v_common: "kein häufig verwendetes oder geleaktes Passwort zu sein",
    v_guessable: "schwerer zu erraten zu sein (ohne Wiederholungen, Folgen und Tastaturmuster)",
    v_identifier: "keinen Teil des Benutzernamens oder der E-Mail-Adresse",
    consent_title: "Zugriff erlauben?",
    consent_intro: "{client} möchte:",
    consent_allow: "Erlauben",
    consent_deny: "Ablehnen",
    scope_openid: "Wissen, wer Sie sind",
    scope_profile: "Ihren Namen und Benutzernamen sehen",
    scope_email: "Ihre E-Mail-Adresse sehen",
    scope_offline_access: "Zugriff behalten, nachdem Sie sich abmelden",
    scope_roles: "Ihre Rollen sehen",
    details_title: "Ihre Angaben",
    details_admin_only: "Von Ihrer Administration festgelegt",
    save_details_button: "Angaben speichern",
    scope_groups: "Die Gruppen sehen, in denen Sie sind",
    scope_other: "„{scope}“ verwenden",
    apps_title: "Verbundene Anwendungen",
    app_revoke_button: "Zugriff entfernen",
    no_apps: "Noch hat keine Anwendung Zugriff.",
    logout_title: "Abmelden",
    logout_confirm: "Möchten Sie sich von {tenant} abmelden?",
    second_factor_title: "Bestätigung in zwei Schritten",
    second_factor_intro: "Geben Sie den 6-stelligen Code aus Ihrer Authenticator-App ein.",
    code_label: "Bestätigungscode",
    verify_button: "Bestätigen",
    bad_code: "Dieser Code ist ungültig. Prüfen Sie die Uhrzeit Ihres Geräts und versuchen Sie es erneut.",
    code_reused: "Dieser Code wurde schon verwendet. Warten Sie auf den nächsten.",
    recovery_intro: "Gerät verloren? Verwenden Sie einen Ihrer Wiederherstellungscodes.",
    recovery_label: "Wiederherstellungscode",
    use_recovery_button: "Wiederherstellungscode verwenden",
    bad_recovery: "Dieser Wiederherstellungscode ist ungültig oder wurde schon verwendet.",
    authenticator_title: "Authenticator-App",
    enrol_intro: "Scannen Sie diesen QR-Code mit Ihrer Authenticator-App (zum Beispiel Google Authenticator oder FreeOTP) und geben Sie den angezeigten Code ein.",
    enrol_required: "Ihre Organisation verlangt eine Bestätigung in zwei Schritten. Richten Sie eine Authenticator-App ein, um fortzufahren.",
    qr_alt: "QR-Code für Ihre Authenticator-App",
    cant_scan: "Scannen nicht möglich? Geben Sie diesen Schlüssel in der App ein:",
    enrol_button: "Aktivieren",
    totp_on: "Ihre Authenticator-App ist eingerichtet.",
    totp_off: "Es ist keine Authenticator-App eingerichtet.",
    set_up_link: "Authenticator-App einrichten",
    remove_button: "Entfernen",
    cannot_remove_last: "Hier ist eine Bestätigung in zwei Schritten vorgeschrieben; Ihr einziger zweiter Faktor kann nicht entfernt werden.",
    recovery_title: "Wiederherstellungscodes",
    recovery_left: "Verbleibende Wiederherstellungscodes: {n}",
    regenerate_button: "Neue Wiederherstellungscodes erzeugen",
    recovery_codes_intro: "Bewahren Sie diese Wiederherstellungscodes sicher auf. Jeder funktioniert einmal, und sie werden nur jetzt angezeigt.",
    continue_link: "Weiter",
    mail_recovery_subject: "Ein Wiederherstellungscode wurde verwendet",
    mail_recovery_body: "Soeben wurde mit einem Wiederherstellungscode eine Anmeldung bei Ihrem Konto von {tenant} bestätigt. Wenn Sie das nicht waren, wenden Sie sich sofort an Ihre Administration.",
    passkeys_title: "Passkeys",
    passkey_signin_button: "Mit einem Passkey anmelden",
    saml_signin_with: "Anmelden mit",
    passkey_use_button: "Passkey verwenden",
    passkey_add_button: "Passkey hinzufügen",
    passkey_name_label: "Name des neuen Passkeys",
    passkey_rename_button: "Umbenennen",
    passkey_none: "Noch kein Passkey.",
    passkey_added: "Hinzugefügt",
    request_error_title: "Diese Anfrage kann nicht ausgeführt werden",
    request_error_intro: "Die Anwendung hat eine ungültige Anmeldeanfrage gesendet. Kehren Sie zu ihr zurück und versuchen Sie es erneut; wenn das wieder passiert, informieren Sie ihren Betreiber.",
};

/// What a password lacks, in the reader's language: "The password needs a, b, c."
pub fn policy_message(strings: &Strings, v: &latchkey_mfa::Violations) -> String {
    use latchkey_mfa::Violation as V;
    let parts: Vec<String> =
        v.0.iter()
            .map(|v| match v {
                V::TooShort { min, len } => strings
                    .v_too_short
                    .replace("{min}", &min.to_string())
                    .replace("{len}", &len.to_string()),
                V::TooLong { max } => strings.v_too_long.replace("{max}", &max.to_string()),
                V::NoLowercase => strings.v_lowercase.into(),
                V::NoUppercase => strings.v_uppercase.into(),
                V::NoDigit => strings.v_digit.into(),
                V::NoSymbol => strings.v_symbol.into(),
                V::Common => strings.v_common.into(),
                V::Guessable => strings.v_guessable.into(),
                V::ContainsIdentifier => strings.v_identifier.into(),
            })
            .collect();
    format!("{} {}.", strings.policy_needs, parts.join(", "))
}

/// The first supported language of a space-separated `ui_locales` list.
pub fn supported(ui_locales: &str) -> Option<&'static Strings> {
    ui_locales.split_whitespace().find_map(by_tag)
}

fn by_tag(tag: &str) -> Option<&'static Strings> {
    match tag
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "en" => Some(&EN),
        "de" => Some(&DE),
        _ => None,
    }
}

/// The first supported language of `ui_locales` (space-separated), else of `Accept-Language`
/// (by quality), else English.
pub fn pick(ui_locales: Option<&str>, accept_language: Option<&str>) -> &'static Strings {
    if let Some(s) = ui_locales.and_then(supported) {
        return s;
    }
    let mut ranked: Vec<(f32, &str)> = accept_language
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse().ok())
                .unwrap_or(1.0);
            Some((q, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .into_iter()
        .filter(|(q, _)| *q > 0.0)
        .find_map(|(_, t)| by_tag(t))
        .unwrap_or(&EN)
}

/// A scope in plain words.
pub(crate) fn describe(strings: &Strings, scope: &str) -> String {
    match scope {
        "openid" => strings.scope_openid.into(),
        "profile" => strings.scope_profile.into(),
        "email" => strings.scope_email.into(),
        "offline_access" => strings.scope_offline_access.into(),
        "roles" => strings.scope_roles.into(),
        "groups" => strings.scope_groups.into(),
        other => strings.scope_other.replace("{scope}", other),
    }
}

/// The email-verification pages and mails (issue 20), in the language of `Strings`.
pub struct EmailStrings {
    pub verify_title: &'static str,
    /// `{email}`: the address the link was sent to.
    pub verify_intro: &'static str,
    pub verify_button: &'static str,
    pub verify_invalid: &'static str,
    /// The account's address changed since the link was sent.
    pub verify_stale: &'static str,
    pub verified_done: &'static str,
    pub verified_badge: &'static str,
    pub unverified_badge: &'static str,
    pub resend_button: &'static str,
    pub resent: &'static str,
    pub unverified_title: &'static str,
    /// `{email}`; `{client}` when known.
    pub unverified_intro: &'static str,
    pub unverified_none: &'static str,
    pub continue_button: &'static str,
    pub mail_subject: &'static str,
    /// `{email}`, `{user}`, `{tenant}`, `{link}`.
    pub mail_body: &'static str,
}

pub static EMAIL_EN: EmailStrings = EmailStrings {
    verify_title: "Confirm your email address",
    verify_intro: "Confirm that {email} is your address.",
    verify_button: "Confirm email address",
    verify_invalid: "This confirmation link is invalid, already used or expired. Sign in and send a new one from your account page.",
    verify_stale: "This link was sent to an address your account no longer has.",
    verified_done: "Your email address is confirmed.",
    verified_badge: "confirmed",
    unverified_badge: "not confirmed yet",
    resend_button: "Send a new confirmation link",
    resent: "A confirmation link is on its way. It works once, within 24 hours.",
    unverified_title: "Confirm your email address first",
    unverified_intro: "Before you continue, confirm your email address {email}: open the link we mailed you, then come back and continue.",
    unverified_none: "Before you continue, add an email address to your account and confirm it.",
    continue_button: "Continue",
    mail_subject: "Confirm your email address for {tenant}",
    mail_body: "Please confirm that {email} is the address of {user} at {tenant}.\n\nOpen this link within 24 hours and press the button on the page. It works once:\n{link}\n\nIf you did not expect this, ignore this mail.\n",
};

pub static EMAIL_DE: EmailStrings = EmailStrings {
    verify_title: "E-Mail-Adresse bestätigen",
    verify_intro: "Bestätigen Sie, dass {email} Ihre Adresse ist.",
    verify_button: "E-Mail-Adresse bestätigen",
    verify_invalid: "Dieser Bestätigungslink ist ungültig, schon benutzt oder abgelaufen. Melden Sie sich an und fordern Sie auf Ihrer Kontoseite einen neuen an.",
    verify_stale: "Dieser Link ging an eine Adresse, die Ihr Konto nicht mehr hat.",
    verified_done: "Ihre E-Mail-Adresse ist bestätigt.",
    verified_badge: "bestätigt",
    unverified_badge: "noch nicht bestätigt",
    resend_button: "Neuen Bestätigungslink senden",
    resent: "Ein Bestätigungslink ist unterwegs. Er funktioniert einmal, innerhalb von 24 Stunden.",
    unverified_title: "Bestätigen Sie zuerst Ihre E-Mail-Adresse",
    unverified_intro: "Bevor es weitergeht, bestätigen Sie Ihre E-Mail-Adresse {email}: Öffnen Sie den Link aus unserer E-Mail und kehren Sie dann hierher zurück.",
    unverified_none: "Bevor es weitergeht, hinterlegen und bestätigen Sie eine E-Mail-Adresse in Ihrem Konto.",
    continue_button: "Weiter",
    mail_subject: "E-Mail-Adresse für {tenant} bestätigen",
    mail_body: "Bitte bestätigen Sie, dass {email} die Adresse von {user} bei {tenant} ist.\n\nÖffnen Sie diesen Link innerhalb von 24 Stunden und drücken Sie den Knopf auf der Seite. Er funktioniert einmal:\n{link}\n\nWenn Sie das nicht erwartet haben, ignorieren Sie diese E-Mail.\n",
};

/// The email strings in the language `strings` is in.
pub fn email(strings: &Strings) -> &'static EmailStrings {
    if strings.lang == "de" {
        &EMAIL_DE
    } else {
        &EMAIL_EN
    }
}

/// The sign-up page (issue 20), in the language of `Strings`.
pub struct SignupStrings {
    pub title: &'static str,
    pub intro: &'static str,
    pub invite_only: &'static str,
    pub email_label: &'static str,
    pub username_label: &'static str,
    pub password_label: &'static str,
    pub button: &'static str,
    /// `{email}`.
    pub sent: &'static str,
    pub link_from_login: &'static str,
    pub bad_email: &'static str,
    pub domain_refused: &'static str,
    /// Followed by a link to the organisation's sign-in.
    pub managed_domain: &'static str,
    pub username_taken: &'static str,
    pub continue_sign_in: &'static str,
    pub mail_taken_subject: &'static str,
    /// `{email}`, `{user}`, `{tenant}`, `{link}` (sign-in), `{reset}`.
    pub mail_taken_body: &'static str,
    /// Passkey-first sign-up: the button, its hint, the answer (`{email}`) and the mail
    /// (`{tenant}`, `{user}`, `{link}`).
    pub passkey_button: &'static str,
    pub passkey_hint: &'static str,
    pub sent_passkey: &'static str,
    pub mail_passkey_subject: &'static str,
    pub mail_passkey_body: &'static str,
}

pub static SIGNUP_EN: SignupStrings = SignupStrings {
    title: "Create an account",
    intro: "We will mail you a link to confirm your address.",
    invite_only: "You need an invitation to create an account here. Ask the person who runs this service to invite you.",
    email_label: "Email address",
    username_label: "Username (optional: your email address otherwise)",
    password_label: "Password",
    button: "Create account",
    sent: "Check your mail: we sent a message to {email}. Follow the link in it to confirm your address, then sign in.",
    link_from_login: "Create an account",
    bad_email: "Enter a valid email address.",
    domain_refused: "Accounts can't be created here for addresses in this domain.",
    managed_domain: "Addresses in this domain are managed by your organisation. Sign in with it instead:",
    username_taken: "That username is taken. Choose another, or leave it empty.",
    continue_sign_in: "Sign in",
    mail_taken_subject: "Sign-up attempt for {tenant}",
    mail_taken_body: "Someone (hopefully you) tried to create an account at {tenant} with {email}, which already belongs to the account {user}. No new account was created.\n\nTo sign in: {link}\nForgot your password? {reset}\n\nIf this was not you, you can ignore this mail.\n",
    passkey_button: "Create account with a passkey instead",
    passkey_hint: "No password needed: we mail you a link, and on its page you create a passkey on your device.",
    sent_passkey: "Check your mail: we sent a message to {email}. Open the link in it on this device to create your passkey and finish your account.",
    mail_passkey_subject: "Finish creating your account at {tenant}",
    mail_passkey_body: "To finish creating your account at {tenant} (username {user}), open this link within 24 hours and create a passkey (or choose a password). It works once:\n{link}\n\nIf you did not ask for an account, ignore this mail: no account is made unless the link is used.\n",
};

pub static SIGNUP_DE: SignupStrings = SignupStrings {
    title: "Konto anlegen",
    intro: "Wir senden Ihnen einen Link, um Ihre Adresse zu bestätigen.",
    invite_only: "Um hier ein Konto anzulegen, brauchen Sie eine Einladung. Bitten Sie die Betreiber dieses Dienstes darum.",
    email_label: "E-Mail-Adresse",
    username_label: "Benutzername (optional, sonst Ihre E-Mail-Adresse)",
    password_label: "Passwort",
    button: "Konto anlegen",
    sent: "Sehen Sie in Ihr Postfach: Wir haben eine Nachricht an {email} gesendet. Bestätigen Sie Ihre Adresse über den Link darin und melden Sie sich dann an.",
    link_from_login: "Konto anlegen",
    bad_email: "Geben Sie eine gültige E-Mail-Adresse ein.",
    domain_refused: "Für Adressen dieser Domain können hier keine Konten angelegt werden.",
    managed_domain: "Adressen dieser Domain verwaltet Ihre Organisation. Melden Sie sich stattdessen darüber an:",
    username_taken: "Dieser Benutzername ist vergeben. Wählen Sie einen anderen oder lassen Sie das Feld leer.",
    continue_sign_in: "Anmelden",
    mail_taken_subject: "Registrierungsversuch bei {tenant}",
    mail_taken_body: "Jemand (hoffentlich Sie) wollte bei {tenant} ein Konto mit {email} anlegen. Diese Adresse gehört schon zum Konto {user}. Es wurde kein neues Konto angelegt.\n\nZur Anmeldung: {link}\nPasswort vergessen? {reset}\n\nWenn Sie das nicht waren, ignorieren Sie diese E-Mail.\n",
    passkey_button: "Stattdessen mit einem Passkey anlegen",
    passkey_hint: "Ohne Passwort: Wir senden Ihnen einen Link, auf dessen Seite Sie einen Passkey auf Ihrem Gerät anlegen.",
    sent_passkey: "Sehen Sie in Ihr Postfach: Wir haben eine Nachricht an {email} gesendet. Öffnen Sie den Link darin auf diesem Gerät, um Ihren Passkey anzulegen und Ihr Konto fertigzustellen.",
    mail_passkey_subject: "Ihr Konto bei {tenant} fertigstellen",
    mail_passkey_body: "Um Ihr Konto bei {tenant} (Benutzername {user}) fertigzustellen, öffnen Sie innerhalb von 24 Stunden diesen Link und legen Sie einen Passkey an (oder wählen Sie ein Passwort). Er funktioniert einmal:\n{link}\n\nWenn Sie kein Konto angefordert haben, ignorieren Sie diese E-Mail: Ohne den Link wird kein Konto angelegt.\n",
};

/// The sign-up strings in the language `strings` is in.
pub fn signup(strings: &Strings) -> &'static SignupStrings {
    if strings.lang == "de" {
        &SIGNUP_DE
    } else {
        &SIGNUP_EN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_locales_win_then_accept_language_by_quality() {
        assert_eq!(pick(Some("fr de-CH"), Some("en")).lang, "de");
        assert_eq!(pick(None, Some("fr;q=1, de;q=0.8, en;q=0.5")).lang, "de");
        assert_eq!(pick(None, Some("de;q=0.1, en;q=0.9")).lang, "en");
        assert_eq!(pick(None, Some("de;q=0")).lang, "en");
        assert_eq!(pick(None, None).lang, "en");
    }

    #[test]
    fn policy_messages_name_each_missing_rule_in_the_readers_language() {
        let v = latchkey_mfa::Violations(vec![
            latchkey_mfa::Violation::TooShort { min: 12, len: 5 },
            latchkey_mfa::Violation::NoDigit,
        ]);
        assert_eq!(
            policy_message(&EN, &v),
            "The password needs at least 12 characters (it has 5), a digit."
        );
        assert_eq!(
            policy_message(&DE, &v),
            "Das Passwort braucht mindestens 12 Zeichen (es hat 5), eine Ziffer."
        );
    }
}
