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
};

/// The first supported language of `ui_locales` (space-separated), else of `Accept-Language`
/// (by quality), else English.
pub fn pick(ui_locales: Option<&str>, accept_language: Option<&str>) -> &'static Strings {
    let by_tag = |tag: &str| match tag
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "en" => Some(&EN),
        "de" => Some(&DE),
        _ => None,
    };
    if let Some(s) = ui_locales.and_then(|l| l.split_whitespace().find_map(by_tag)) {
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
}
