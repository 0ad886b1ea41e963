//! The strings of the account lifecycle pages (accepting an invitation),
//! English and German, in the language `i18n::pick` chose for the rest of the page.

use super::i18n::Strings;

#[allow(clippy::struct_field_names)] // the deletion strings join these next
pub struct LifecycleStrings {
    pub invite_title: &'static str,
    /// `{tenant}` and `{user}` are filled in.
    pub invite_intro: &'static str,
    pub invite_password_button: &'static str,
    pub invite_passkey_intro: &'static str,
    pub invite_passkey_button: &'static str,
    pub invite_unknown: &'static str,
    pub invite_spent: &'static str,
    pub invite_expired: &'static str,
    pub invite_revoked: &'static str,
    pub invite_taken: &'static str,
    pub invite_done: &'static str,
}

pub static EN: LifecycleStrings = LifecycleStrings {
    invite_title: "Set up your account",
    invite_intro: "You are invited to {tenant}. Your username is {user}. Choose a password, or use a passkey instead.",
    invite_password_button: "Create my account",
    invite_passkey_intro: "Or sign in without a password, with a passkey on this device:",
    invite_passkey_button: "Create my account with a passkey",
    invite_unknown: "This invitation link is not valid. If it was sent again, use the link in the newest mail.",
    invite_spent: "This invitation has been used already. Sign in with the account it created.",
    invite_expired: "This invitation has expired. Ask whoever invited you to send it again.",
    invite_revoked: "This invitation was withdrawn.",
    invite_taken: "An account with this email address exists already. Sign in instead.",
    invite_done: "Your account is ready. Please sign in.",
};

pub static DE: LifecycleStrings = LifecycleStrings {
    invite_title: "Konto einrichten",
    invite_intro: "Sie sind zu {tenant} eingeladen. Ihr Benutzername ist {user}. Wählen Sie ein Passwort oder verwenden Sie stattdessen einen Passkey.",
    invite_password_button: "Konto anlegen",
    invite_passkey_intro: "Oder ohne Passwort anmelden, mit einem Passkey auf diesem Gerät:",
    invite_passkey_button: "Konto mit einem Passkey anlegen",
    invite_unknown: "Dieser Einladungslink ist ungültig. Wurde er erneut gesendet, verwenden Sie den Link der neuesten E-Mail.",
    invite_spent: "Diese Einladung wurde schon verwendet. Melden Sie sich mit dem angelegten Konto an.",
    invite_expired: "Diese Einladung ist abgelaufen. Bitten Sie die einladende Person, sie erneut zu senden.",
    invite_revoked: "Diese Einladung wurde zurückgezogen.",
    invite_taken: "Ein Konto mit dieser E-Mail-Adresse gibt es schon. Melden Sie sich stattdessen an.",
    invite_done: "Ihr Konto ist bereit. Bitte melden Sie sich an.",
};

/// The lifecycle strings in the language of `s`.
pub fn of(s: &Strings) -> &'static LifecycleStrings {
    if s.lang == "de" { &DE } else { &EN }
}
