//! The strings of the account lifecycle pages (accepting an invitation, deleting an account),
//! English and German, in the language `i18n::pick` chose for the rest of the page.

use super::i18n::Strings;

pub struct LifecycleStrings {
    pub invite_title: &'static str,
    /// `{tenant}` and `{user}` are filled in.
    pub invite_intro: &'static str,
    /// The same page for a passkey-first sign-up (`{tenant}`, `{user}`).
    pub signup_intro: &'static str,
    pub invite_password_button: &'static str,
    pub invite_passkey_intro: &'static str,
    pub invite_passkey_button: &'static str,
    pub invite_unknown: &'static str,
    pub invite_spent: &'static str,
    pub invite_expired: &'static str,
    pub invite_revoked: &'static str,
    pub invite_taken: &'static str,
    pub invite_done: &'static str,
    pub delete_title: &'static str,
    pub delete_now: &'static str,
    /// `{days}` is filled in.
    pub delete_grace: &'static str,
    pub delete_password_label: &'static str,
    pub delete_button: &'static str,
    pub delete_passkey_intro: &'static str,
    pub delete_passkey_button: &'static str,
    pub delete_wrong_password: &'static str,
    pub account_deleted: &'static str,
    pub deletion_scheduled: &'static str,
    pub mail_deleted_subject: &'static str,
    /// `{user}` and `{tenant}` are filled in.
    pub mail_deleted_body: &'static str,
    pub mail_deletion_subject: &'static str,
    /// `{user}`, `{tenant}` and `{date}` are filled in.
    pub mail_deletion_body: &'static str,
}

pub static EN: LifecycleStrings = LifecycleStrings {
    invite_title: "Set up your account",
    invite_intro: "You are invited to {tenant}. Your username is {user}. Choose a password, or use a passkey instead.",
    signup_intro: "Welcome to {tenant}: your address is confirmed. Your username is {user}. Create a passkey on this device to finish your account, or choose a password instead.",
    invite_password_button: "Create my account",
    invite_passkey_intro: "Or sign in without a password, with a passkey on this device:",
    invite_passkey_button: "Create my account with a passkey",
    invite_unknown: "This invitation link is not valid. If it was sent again, use the link in the newest mail.",
    invite_spent: "This invitation has been used already. Sign in with the account it created.",
    invite_expired: "This invitation has expired. Ask whoever invited you to send it again.",
    invite_revoked: "This invitation was withdrawn.",
    invite_taken: "An account with this email address exists already. Sign in instead.",
    invite_done: "Your account is ready. Please sign in.",
    delete_title: "Delete my account",
    delete_now: "This deletes your account and what is stored with it, at once. It can't be undone.",
    delete_grace: "Your account is closed at once and deleted after {days} days; until then an administrator can restore it.",
    delete_password_label: "Your password, to confirm",
    delete_button: "Delete my account",
    delete_passkey_intro: "Your account has no password: confirm with your passkey.",
    delete_passkey_button: "Confirm with a passkey and delete my account",
    delete_wrong_password: "The password is incorrect. Your account was not deleted.",
    account_deleted: "Your account has been deleted.",
    deletion_scheduled: "Your account is closed and will be deleted when the waiting period ends; until then an administrator can restore it.",
    mail_deleted_subject: "Your account has been deleted",
    mail_deleted_body: "The account {user} at {tenant} has been deleted, as you asked.\n\nIf you did not ask for this, contact the administrator of {tenant}.\n",
    mail_deletion_subject: "Your account will be deleted",
    mail_deletion_body: "The account {user} at {tenant} is closed and will be deleted on {date}, as you asked.\n\nUntil then an administrator of {tenant} can restore it. If you did not ask for this, contact them now.\n",
};

pub static DE: LifecycleStrings = LifecycleStrings {
    invite_title: "Konto einrichten",
    invite_intro: "Sie sind zu {tenant} eingeladen. Ihr Benutzername ist {user}. Wählen Sie ein Passwort oder verwenden Sie stattdessen einen Passkey.",
    signup_intro: "Willkommen bei {tenant}: Ihre Adresse ist bestätigt. Ihr Benutzername ist {user}. Legen Sie auf diesem Gerät einen Passkey an, um Ihr Konto fertigzustellen, oder wählen Sie stattdessen ein Passwort.",
    invite_password_button: "Konto anlegen",
    invite_passkey_intro: "Oder ohne Passwort anmelden, mit einem Passkey auf diesem Gerät:",
    invite_passkey_button: "Konto mit einem Passkey anlegen",
    invite_unknown: "Dieser Einladungslink ist ungültig. Wurde er erneut gesendet, verwenden Sie den Link der neuesten E-Mail.",
    invite_spent: "Diese Einladung wurde schon verwendet. Melden Sie sich mit dem angelegten Konto an.",
    invite_expired: "Diese Einladung ist abgelaufen. Bitten Sie die einladende Person, sie erneut zu senden.",
    invite_revoked: "Diese Einladung wurde zurückgezogen.",
    invite_taken: "Ein Konto mit dieser E-Mail-Adresse gibt es schon. Melden Sie sich stattdessen an.",
    invite_done: "Ihr Konto ist bereit. Bitte melden Sie sich an.",
    delete_title: "Mein Konto löschen",
    delete_now: "Damit werden Ihr Konto und alles dazu Gespeicherte sofort gelöscht. Das lässt sich nicht rückgängig machen.",
    delete_grace: "Ihr Konto wird sofort gesperrt und nach {days} Tagen gelöscht; bis dahin kann ein Administrator es wiederherstellen.",
    delete_password_label: "Ihr Passwort, zur Bestätigung",
    delete_button: "Mein Konto löschen",
    delete_passkey_intro: "Ihr Konto hat kein Passwort: bestätigen Sie mit Ihrem Passkey.",
    delete_passkey_button: "Mit einem Passkey bestätigen und mein Konto löschen",
    delete_wrong_password: "Das Passwort ist falsch. Ihr Konto wurde nicht gelöscht.",
    account_deleted: "Ihr Konto wurde gelöscht.",
    deletion_scheduled: "Ihr Konto ist gesperrt und wird nach Ablauf der Wartezeit gelöscht; bis dahin kann ein Administrator es wiederherstellen.",
    mail_deleted_subject: "Ihr Konto wurde gelöscht",
    mail_deleted_body: "Das Konto {user} bei {tenant} wurde wie gewünscht gelöscht.\n\nWenn Sie das nicht waren, wenden Sie sich an den Administrator von {tenant}.\n",
    mail_deletion_subject: "Ihr Konto wird gelöscht",
    mail_deletion_body: "Das Konto {user} bei {tenant} ist gesperrt und wird wie gewünscht am {date} gelöscht.\n\nBis dahin kann ein Administrator von {tenant} es wiederherstellen. Wenn Sie das nicht waren, wenden Sie sich jetzt an ihn.\n",
};

/// The lifecycle strings in the language of `s`.
pub fn of(s: &Strings) -> &'static LifecycleStrings {
    if s.lang == "de" { &DE } else { &EN }
}
