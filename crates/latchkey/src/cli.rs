//! The command line, as documented in the README: a public contract.

use crate::error::CliError;
use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};
use latchkey_core::{AccessTokenFormat, AuthMethod, GrantType, UpstreamAuth, UpstreamKind};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Latchkey identity provider: server and operator CLI"
)]
pub struct Cli {
    /// TOML configuration file (default: $LATCHKEY_CONFIG, else ./latchkey.toml if present).
    /// LATCHKEY_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP(S) until SIGTERM/SIGINT.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Ask the server on this host (`LATCHKEY_LISTEN`) whether it is ready (`/readyz`): exit 0 if
    /// so, 1 if not. The container image's health check, which has no shell or HTTP client.
    Healthcheck,
    /// Set up a demo tenant, clients and user on the configured storage, print them, then serve,
    /// with an example portal (a relying party) on loopback.
    Demo(DemoArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage OAuth/OIDC clients of a tenant.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage users of a tenant.
    #[command(subcommand)]
    User(UserCmd),
    /// Check and export a tenant's audit chain.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manage a tenant's admin-API credentials (`lka_` tokens and OAuth admin clients).
    #[command(subcommand)]
    AdminToken(AdminTokenCmd),
    /// Manage a tenant's custom admin roles and list permissions.
    #[command(subcommand)]
    AdminRole(AdminRoleCmd),
    /// Manage system credentials: `lks_` tokens for the installation's scope (`/admin/system`:
    /// tenants, data keys, the system audit chain), holding only `system:` permissions.
    #[command(subcommand)]
    SystemToken(SystemTokenCmd),
    /// Signing keys and the master key.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Manage a tenant's SAML connections (enterprise identity providers; Latchkey is the
    /// service provider toward them).
    #[command(subcommand)]
    Saml(SamlCmd),
    /// Manage a tenant's upstream OpenID Connect connections (Entra ID, Okta, Google, GitHub,
    /// another Latchkey; Latchkey is the relying party toward them).
    #[command(subcommand)]
    OidcConnection(OidcConnectionCmd),
    /// Domains a tenant claims and proves it controls (a DNS TXT record or an HTTP file).
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage a tenant's roles and client roles, and assign them to users and groups.
    #[command(subcommand)]
    Role(RoleCmd),
    /// Manage a tenant's groups (of users and groups; a group is in at most one group).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Invite people into a tenant by mail: they set a password or a passkey themselves.
    #[command(subcommand)]
    Invite(InviteCmd),
    /// Manage a tenant's user attributes (a typed schema) and users' values.
    #[command(subcommand)]
    Attribute(AttributeCmd),
    /// Make a tenant what a tenant file says (docs/tenants-as-code.md): prints the plan as a
    /// diff, then applies it.
    Apply(ApplyArgs),
    /// Write a tenant as a tenant file (no secrets).
    Export(ExportArgs),
    /// Write an encrypted backup of the whole installation or of some tenants: every row, read
    /// in one consistent snapshot, sealed with a key wrapped under the master key.
    Backup(BackupArgs),
    /// Restore a backup into the configured database, which must hold no tenant (SQLite or
    /// PostgreSQL, whichever the backup came from); needs the master key it was taken under.
    Restore(RestoreArgs),
    /// Respond to a security incident in a tenant (docs/privacy.md#incident-response): void
    /// every session and token of its users (or of `--user`s) at once, optionally invalidate
    /// their passwords, replace the signing keys and mail every affected user; prints the
    /// report (who was notified when). Audited. Asks for confirmation unless `--yes`.
    Incident(IncidentArgs),
}

#[derive(Debug, Args)]
pub struct IncidentArgs {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Only this user (username or id; repeatable). Without it: every user of the tenant.
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// Invalidate the affected users' passwords: a reset link sets a new one.
    #[arg(long)]
    pub reset_passwords: bool,
    /// Revoke every signing key of the tenant and activate new ones at once.
    #[arg(long)]
    pub rotate_keys: bool,
    /// Mail every affected user who has an address (the built-in notice unless --subject and
    /// --body-file say otherwise; {user}, {tenant}, {incident} and {password} are filled in).
    #[arg(long)]
    pub notify: bool,
    #[arg(long, value_name = "TEXT", requires = "notify")]
    pub subject: Option<String>,
    #[arg(long, value_name = "FILE", requires = "notify")]
    pub body_file: Option<PathBuf>,
    /// Don't ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Back up only this tenant (repeatable); without it, everything, system credentials and
    /// the system audit chain included.
    #[arg(long = "tenant", value_name = "SLUG")]
    pub tenants: Vec<String>,
    /// Back up this region's database (`LATCHKEY_REGIONS`); default: the home region. A backup
    /// covers one region, so it stays there.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Write to this file (created with mode 0600, never overwritten); `-` is standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Write the key vault (each user's key) instead of the data, which never holds them
    /// (docs/privacy.md#erasure). Keep only the newest vault: one written before an erasure
    /// still opens the erased user's data in older backups.
    #[arg(long)]
    pub vault: bool,
    /// Machine-readable output.
    #[arg(long = "json")]
    pub out: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file; `-` reads standard input.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: PathBuf,
    /// The key vault (`latchkey backup --vault`) whose users' keys open the restored personal
    /// data; without it, usernames, emails and attributes stay sealed.
    #[arg(long, value_name = "FILE")]
    pub vault: Option<PathBuf>,
    /// Restore into this region's database (`LATCHKEY_REGIONS`); default: the home region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Machine-readable output.
    #[arg(long = "json")]
    pub out: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The tenant file (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Print the plan and change nothing.
    #[arg(long, visible_alias = "plan")]
    pub dry_run: bool,
    /// Delete what the tenant has and the file does not mention (else it is kept).
    #[arg(long)]
    pub prune: bool,
    /// Create the tenant when it does not exist (else that is an error).
    #[arg(long)]
    pub create_tenant: bool,
    #[command(flatten)]
    pub out: Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `yaml` (the default) or `json`.
    #[arg(long, value_name = "FORMAT", default_value = "yaml", value_parser = ["yaml", "json"])]
    pub format: String,
}

/// Who may change an attribute: `admin` or `user` (on the account page too).
#[derive(Debug, Args)]
pub struct AttributeRules {
    /// A value must be present (it can't be cleared; the account form asks for it).
    #[arg(long, value_name = "BOOL")]
    pub required: Option<bool>,
    /// No two users may hold the same value.
    #[arg(long, value_name = "BOOL")]
    pub unique: Option<bool>,
    #[arg(long, value_name = "WHO")]
    pub editable_by: Option<latchkey_core::EditableBy>,
    /// The label shown on the account page.
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AttributeCmd {
    /// Declare an attribute: `--type string|number|boolean|string-list`.
    Define {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long = "type", value_name = "TYPE")]
        kind: latchkey_core::AttributeKind,
        #[command(flatten)]
        rules: AttributeRules,
        #[command(flatten)]
        out: Json,
    },
    /// Change an attribute's label, required, unique or editable-by (not its type).
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        rules: AttributeRules,
        /// Remove the label.
        #[arg(long, conflicts_with = "label")]
        no_label: bool,
        #[command(flatten)]
        out: Json,
    },
    /// The tenant's attribute schema.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Remove an attribute and every user's value of it.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// A user's attribute values.
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
        #[command(flatten)]
        out: Json,
    },
    /// Set a user's values: `NAME=VALUE` (lists comma-separated), in one change.
    Set {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
        #[arg(value_name = "NAME=VALUE", required = true)]
        values: Vec<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Clear a user's values.
    Unset {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a top-level group.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Every group of the tenant with its path.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// The group, its path, direct members and the roles assigned to it.
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// Rename the group or change its description.
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long = "name", value_name = "NEW_NAME")]
        new_name: Option<String>,
        #[arg(long, conflicts_with = "no_description")]
        description: Option<String>,
        /// Clear the description.
        #[arg(long)]
        no_description: bool,
        #[command(flatten)]
        out: Json,
    },
    /// Delete the group: its memberships and role assignments go; groups inside it become
    /// top-level groups.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// Put a user or a group into the group.
    AddMember(GroupMember),
    /// Take a user or a group out of the group.
    RemoveMember(GroupMember),
}

#[derive(Debug, Args)]
pub struct GroupMember {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The group.
    pub name: String,
    #[command(flatten)]
    pub member: PrincipalArg,
    #[command(flatten)]
    pub out: Json,
}

/// Exactly one of `--user` and `--group`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PrincipalArg {
    /// A user, by username or id.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// A group, by name.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

#[derive(Debug, Args)]
pub struct RoleAssignment {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The role's name.
    pub name: String,
    /// The role is a client role of this client.
    #[arg(long, value_name = "CLIENT_ID")]
    pub client: Option<String>,
    #[command(flatten)]
    pub to: PrincipalArg,
    #[command(flatten)]
    pub out: Json,
}

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Create a tenant role, or with --client a role of that client.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Create a client role of this client.
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Every role of the tenant, or with --client every role of that client.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Delete a role (users and groups lose it).
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Assign a role to a user or a group.
    Assign(RoleAssignment),
    /// Take a role from a user or a group.
    Unassign(RoleAssignment),
    /// A user's effective roles, client roles and groups, through every group they are in.
    Effective(UserRef),
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Claim a domain; prints the challenge to publish (the TXT record, or the file and URL).
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        domain: String,
        /// How the claim will be proven.
        #[arg(long, value_parser = ["dns", "http"], default_value = "dns")]
        method: String,
        #[command(flatten)]
        out: Json,
    },
    /// The tenant's claims with their challenges and state.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Check the challenge now (the configured DNS resolver; HTTP through the outbound guard);
    /// exits 1 when the claim is not proven.
    Verify {
        #[command(flatten)]
        tenant: TenantArg,
        domain: String,
        #[command(flatten)]
        out: Json,
    },
    /// Withdraw the claim.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        domain: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Subcommand)]
pub enum SamlCmd {
    /// Connect an IdP from its metadata; prints what the IdP's administrator needs (SP entity
    /// id, metadata and ACS URLs).
    Add(Box<SamlAdd>),
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// The connection: IdP endpoints and certificates, options, metadata source and refresh
    /// state, SP URLs and certificate (never the SP private key).
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// Change options, or replace the metadata (--metadata-file / --metadata-url).
    Update(Box<SamlUpdate>),
    /// Remove the connection and the links of its users' identities (the users stay).
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// Fetch the metadata from its URL now. On failure the last good metadata is kept, the
    /// error recorded, and the command exits 1.
    RefreshMetadata {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// The connection's health: last metadata refresh, IdP certificate expiry (warned 30 days
    /// ahead), refused sign-ins of the last 7 days by reason, last successful sign-in.
    Health {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("metadata").required(true).args(["metadata_file", "metadata_url"])))]
pub struct SamlAdd {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// URL-safe name: /t/{tenant}/saml/{name}/…
    #[arg(long)]
    pub name: String,
    /// The IdP's metadata XML (the connection is not refreshed).
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Where the IdP publishes its metadata (https, or http on loopback); refreshed hourly.
    #[arg(long, value_name = "URL")]
    pub metadata_url: Option<String>,
    /// Shown on the sign-in page (default: the name).
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub opts: SamlFlags,
    #[command(flatten)]
    pub out: Json,
}

#[derive(Debug, Args)]
pub struct SamlUpdate {
    #[command(flatten)]
    pub tenant: TenantArg,
    pub name: String,
    /// Replace the metadata from this file (the connection stops refreshing from a URL).
    #[arg(long, value_name = "FILE", conflicts_with = "metadata_url")]
    pub metadata_file: Option<PathBuf>,
    /// Replace the metadata from this URL now and refresh from it hourly.
    #[arg(long, value_name = "URL")]
    pub metadata_url: Option<String>,
    #[arg(long)]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub opts: SamlFlags,
    /// Remove every group → role mapping.
    #[arg(long, conflicts_with = "role_map")]
    pub no_role_map: bool,
    /// Remove every IdP group → group mapping.
    #[arg(long, conflicts_with = "group_map")]
    pub no_group_map: bool,
    /// Stop checking the metadata's signature (unpin the metadata-signing certificate).
    #[arg(long, conflicts_with = "metadata_signing_cert")]
    pub no_metadata_signing_cert: bool,
    #[command(flatten)]
    pub out: Json,
}

/// Per-connection behaviour (see `SamlOptions`); on `update`, only the flags given change.
#[derive(Debug, Args, Default)]
pub struct SamlFlags {
    /// Email domains this IdP signs in (home-realm discovery), comma-separated; '' clears.
    #[arg(long, value_name = "DOMAINS")]
    pub domains: Option<String>,
    /// Accept IdP-initiated (unsolicited) responses.
    #[arg(long, value_name = "on|off", value_parser = on_off, num_args = 0..=1, default_missing_value = "on")]
    pub allow_idp_initiated: Option<bool>,
    /// Create users at their first sign-in (default on).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub jit: Option<bool>,
    /// Link a first sign-in to the local account with the same email in one of the domains.
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub link_existing: Option<bool>,
    /// The IdP vouches for the addresses it asserts: its users' email is verified (default off).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub email_verified: Option<bool>,
    /// Take the IdP's word for multi-factor authentication.
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub trust_idp_mfa: Option<bool>,
    /// Sign AuthnRequests (default: what the IdP's metadata asks for).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub sign_requests: Option<bool>,
    /// Legacy: also accept AES-CBC encrypted assertions (default off: AES-GCM only; CBC in XML
    /// Encryption is open to padding-oracle attacks).
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub legacy_cbc: Option<bool>,
    /// Pin the IdP's metadata-signing certificate (PEM or base64 DER): metadata fetched or
    /// refreshed must carry a valid signature by it.
    #[arg(long, value_name = "FILE")]
    pub metadata_signing_cert: Option<PathBuf>,
    /// Which attribute gives email, name or groups (repeatable; `email=` resets to the default).
    #[arg(long = "map", value_name = "email|name|groups=ATTR")]
    pub map: Vec<String>,
    /// IdP group → tenant role (repeatable; on update, replaces the whole map).
    #[arg(long = "role-map", value_name = "GROUP=ROLE")]
    pub role_map: Vec<String>,
    /// IdP group → Latchkey group: members follow the IdP at each sign-in (repeatable; on
    /// update, replaces the whole map).
    #[arg(long = "group-map", value_name = "IDP_GROUP=GROUP")]
    pub group_map: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum OidcConnectionCmd {
    /// Connect an upstream provider (an OpenID Connect one is discovered first); prints the
    /// redirect URI to register there and, for private_key_jwt, the public key.
    Add(Box<OidcAdd>),
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// The connection: its settings, the redirect URI to register upstream, the public key and
    /// JWKS URL for private_key_jwt, and what discovery found (never the secret or the key).
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// Change the flags given; a new issuer or discovery URL is discovered now.
    Update(Box<OidcUpdate>),
    /// Remove the connection and the links of its users' upstream identities (the users stay).
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
    /// Read the discovery document and JWK Set now, under the server's outbound guard. On
    /// failure the last good discovery is kept, the error recorded, and the command exits 1.
    Refresh {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
}

/// Parses a flag's value as the wire name of `T` (`client_secret_basic`, `oauth2`).
fn wire<T: serde::de::DeserializeOwned>(value: String) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(value))
}

#[derive(Debug, Args)]
pub struct OidcAdd {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// URL-safe name: /t/{tenant}/federation/{name}/…
    #[arg(long)]
    pub name: String,
    /// Shown on the sign-in page (default: the name).
    #[arg(long)]
    pub display_name: Option<String>,
    /// `oidc` (discovery, ID tokens) or `oauth2` (configured endpoints and a user endpoint, as
    /// GitHub).
    #[arg(long, default_value = "oidc", value_parser = kind_parser())]
    pub kind: UpstreamKind,
    /// The issuer (https); for Entra ID's multi-tenant endpoint with `{tenantid}`. For oauth2, a
    /// label naming the provider (https://github.com).
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// Where discovery is read (default: {issuer}/.well-known/openid-configuration).
    #[arg(long, value_name = "URL")]
    pub discovery_url: Option<String>,
    /// An Entra tenant id a `{tenantid}` issuer accepts (repeatable; required for one).
    #[arg(long = "allowed-tenant-id", value_name = "ID")]
    pub allowed_tenant_ids: Vec<String>,
    /// The client id registered upstream.
    #[arg(long)]
    pub client_id: String,
    /// How Latchkey authenticates to the upstream's token endpoint; private_key_jwt makes a key
    /// whose public half the upstream pins.
    #[arg(long, value_name = "METHOD", default_value = "client_secret_basic", value_parser = auth_method_parser())]
    pub client_auth: UpstreamAuth,
    #[command(flatten)]
    pub secret: OidcSecret,
    /// A scope to ask for (repeatable; default `openid email profile` for oidc, none for oauth2).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub endpoints: OidcEndpoints,
    #[command(flatten)]
    pub opts: OidcFlags,
    #[command(flatten)]
    pub out: Json,
}

/// `--client-auth`: one of the methods, by its wire name.
fn auth_method_parser() -> impl clap::builder::TypedValueParser<Value = UpstreamAuth> {
    clap::builder::PossibleValuesParser::new(["client_secret_basic", "client_secret_post", "private_key_jwt"])
        .try_map(wire::<UpstreamAuth>)
}

/// `--kind`: `oidc` or `oauth2`.
fn kind_parser() -> impl clap::builder::TypedValueParser<Value = UpstreamKind> {
    clap::builder::PossibleValuesParser::new(["oidc", "oauth2"]).try_map(wire::<UpstreamKind>)
}

#[derive(Debug, Args)]
pub struct OidcUpdate {
    #[command(flatten)]
    pub tenant: TenantArg,
    pub name: String,
    #[arg(long)]
    pub display_name: Option<String>,
    /// A new issuer: discovered now (oidc).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// A new discovery URL: discovered now; '' goes back to the issuer's.
    #[arg(long, value_name = "URL")]
    pub discovery_url: Option<String>,
    /// Replaces the allowed Entra tenant ids (repeatable).
    #[arg(long = "allowed-tenant-id", value_name = "ID")]
    pub allowed_tenant_ids: Vec<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// To private_key_jwt makes a key; from it needs a secret.
    #[arg(long, value_name = "METHOD", value_parser = auth_method_parser())]
    pub client_auth: Option<UpstreamAuth>,
    /// A new client secret replaces the old one.
    #[command(flatten)]
    pub secret: OidcSecret,
    /// Replaces the scopes (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    #[command(flatten)]
    pub endpoints: OidcEndpoints,
    #[command(flatten)]
    pub opts: OidcFlags,
    /// Remove every domain.
    #[arg(long, conflicts_with = "domains")]
    pub no_domains: bool,
    /// Remove every group → role mapping.
    #[arg(long, conflicts_with = "role_map")]
    pub no_role_map: bool,
    /// Remove every upstream group → group mapping.
    #[arg(long, conflicts_with = "group_map")]
    pub no_group_map: bool,
    /// Remove every claim → attribute mapping.
    #[arg(long, conflicts_with = "attribute_map")]
    pub no_attribute_map: bool,
    #[command(flatten)]
    pub out: Json,
}

/// The client secret, from a file or the environment: never an argument, which `ps` and the
/// shell's history would show.
#[derive(Debug, Args, Default)]
pub struct OidcSecret {
    /// A file holding the client secret (one trailing newline is dropped).
    #[arg(long, value_name = "PATH", conflicts_with = "client_secret_env")]
    pub client_secret_file: Option<PathBuf>,
    /// An environment variable holding the client secret.
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
}

/// An OAuth 2.0 provider's endpoints (`--kind oauth2`; an OpenID Connect one's are discovered).
#[derive(Debug, Args, Default)]
pub struct OidcEndpoints {
    /// Where people are sent to sign in.
    #[arg(long = "authorization-endpoint", value_name = "URL")]
    pub authorization: Option<String>,
    /// Where the code is exchanged for an access token.
    #[arg(long = "token-endpoint", value_name = "URL")]
    pub token: Option<String>,
    /// The user endpoint (GitHub's https://api.github.com/user).
    #[arg(long = "userinfo-endpoint", value_name = "URL")]
    pub user: Option<String>,
}

/// Per-connection behaviour (see `UpstreamOptions`); on `update`, only the flags given change.
#[derive(Debug, Args, Default)]
pub struct OidcFlags {
    /// An email domain this connection signs in (home-realm discovery); repeatable, on update
    /// replaces the list.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Create users at their first sign-in (the default).
    #[arg(long, overrides_with = "no_jit")]
    pub jit: bool,
    /// Only people who have an account already sign in.
    #[arg(long, overrides_with = "jit")]
    pub no_jit: bool,
    /// Link a first sign-in to the local account with the same email in one of the domains,
    /// verified upstream.
    #[arg(long, overrides_with = "no_link_existing")]
    pub link_existing: bool,
    /// A first sign-in never takes over an existing account (the default).
    #[arg(long, overrides_with = "link_existing")]
    pub no_link_existing: bool,
    /// Take the upstream's `email_verified: true` as verification (default off).
    #[arg(long, overrides_with = "no_trust_email_verified")]
    pub trust_email_verified: bool,
    /// Addresses from the upstream are unverified (the default).
    #[arg(long, overrides_with = "trust_email_verified")]
    pub no_trust_email_verified: bool,
    /// Take the upstream's word for multi-factor authentication (`amr` with `mfa`).
    #[arg(long, overrides_with = "no_trust_upstream_mfa")]
    pub trust_upstream_mfa: bool,
    /// The tenant's MFA policy asks for a Latchkey factor (the default).
    #[arg(long, overrides_with = "trust_upstream_mfa")]
    pub no_trust_upstream_mfa: bool,
    /// Also read the UserInfo endpoint after the ID token.
    #[arg(long, overrides_with = "no_userinfo")]
    pub userinfo: bool,
    /// The ID token alone (the default).
    #[arg(long, overrides_with = "userinfo")]
    pub no_userinfo: bool,
    /// The claim giving the user's upstream id (default `sub`; GitHub's `id`); '' resets.
    #[arg(long, value_name = "CLAIM")]
    pub map_subject: Option<String>,
    /// The claim giving the email (default `email`); '' resets.
    #[arg(long, value_name = "CLAIM")]
    pub map_email: Option<String>,
    /// The claim giving the display name (default `name`); '' resets.
    #[arg(long, value_name = "CLAIM")]
    pub map_name: Option<String>,
    /// The claim listing the user's groups (default: groups are not read); '' stops reading them.
    #[arg(long, value_name = "CLAIM")]
    pub map_groups: Option<String>,
    /// Upstream group → tenant role (repeatable; on update, replaces the whole map).
    #[arg(long = "role-map", value_name = "GROUP=ROLE")]
    pub role_map: Vec<String>,
    /// Upstream group → Latchkey group: members follow the upstream at each sign-in (repeatable;
    /// on update, replaces the whole map).
    #[arg(long = "group-map", value_name = "UPSTREAM=GROUP")]
    pub group_map: Vec<String>,
    /// Upstream claim → user attribute, set at each sign-in (repeatable; on update, replaces the
    /// whole map; the attribute must be in the tenant's schema).
    #[arg(long = "attribute-map", value_name = "CLAIM=ATTRIBUTE")]
    pub attribute_map: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Every signing key of the tenant with its state and transition times.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Create a pending key: published in JWKS now, signing once activated (or by the scheduler).
    Rotate {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, value_name = "ES256|RS256|EdDSA")]
        alg: latchkey_keys::Alg,
        #[command(flatten)]
        out: Json,
    },
    /// Make a pending key active now; the previous active key of its algorithm retires.
    Activate {
        #[command(flatten)]
        tenant: TenantArg,
        kid: String,
        #[command(flatten)]
        out: Json,
    },
    /// Stop a key signing; it stays in JWKS until its tokens have expired.
    Retire {
        #[command(flatten)]
        tenant: TenantArg,
        kid: String,
        #[command(flatten)]
        out: Json,
    },
    /// Emergency: remove a key from JWKS at once; tokens it signed stop verifying.
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        kid: String,
        #[command(flatten)]
        out: Json,
    },
    /// Replace the master key: re-wrap every data key in one transaction; the old key file is kept
    /// as master.key.replaced-<time>.
    RotateMaster {
        #[command(flatten)]
        out: Json,
    },
    /// Replace the tenant's data key and re-encrypt its values in batches (resumable: run it
    /// again after an interruption; both keys open values until it finishes).
    RotateDek {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Sign a five-minute test token with the active key, to see which kid signs now.
    TestToken {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, value_name = "ES256|RS256|EdDSA", default_value = "ES256")]
        alg: latchkey_keys::Alg,
    },
}

/// What an admin credential or role may do.
#[derive(Debug, Args)]
pub struct AdminGrants {
    /// An admin role (built-in: tenant-admin, user-manager, auditor, read-only; or a custom
    /// one); repeat or separate by commas.
    #[arg(long = "role", value_name = "ROLE", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// A single permission such as users:read (`latchkey admin-role permissions` lists them);
    /// repeat or separate by commas.
    #[arg(long = "permission", value_name = "PERMISSION", value_delimiter = ',')]
    pub permissions: Vec<String>,
}

/// The grants an update replaces: those given, or cleared when asked.
#[derive(Debug, Args)]
pub struct GrantChange {
    #[command(flatten)]
    pub grants: AdminGrants,
    /// Replace the roles even when no `--role` is given (clears them).
    #[arg(long)]
    pub clear_roles: bool,
    /// Replace the permissions even when no `--permission` is given (clears them).
    #[arg(long)]
    pub clear_permissions: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCmd {
    /// Create a credential. It may do nothing until given roles or permissions. Without
    /// `--client` or `--user` it is an `lka_` token, shown once (only its hash is stored); with
    /// `--client`, the client's OAuth access tokens for the admin API are accepted; with
    /// `--user`, that user signs in to the admin console.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        grants: AdminGrants,
        /// A confidential client with the client_credentials grant, registered for the admin
        /// API as a resource.
        #[arg(long, value_name = "CLIENT_ID", conflicts_with = "user")]
        client: Option<String>,
        /// A user of the tenant (username or id), who opens the admin console at
        /// `/t/{tenant}/admin/` by signing in with two factors.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Days until the credential stops working (default: 90; 0 = never).
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        expires_in_days: u32,
        #[command(flatten)]
        out: Json,
    },
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Replace a credential's roles and/or permissions (those given; `--role ''` clears).
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        id: String,
        #[command(flatten)]
        change: GrantChange,
        #[command(flatten)]
        out: Json,
    },
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        id: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Subcommand)]
pub enum SystemTokenCmd {
    /// Create an `lks_` token, shown once. It may do nothing until given `--role system-admin`
    /// or `system:` permissions. With `--operator TENANT/USER` no token is made: that user
    /// opens the system console at `/t/TENANT/admin/system/` by signing in with two factors.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        grants: AdminGrants,
        /// An operator's own account, as TENANT/USER (username or id).
        #[arg(long, value_name = "TENANT/USER")]
        operator: Option<String>,
        /// Days until the token stops working (default: 90; 0 = never).
        #[arg(long, value_name = "DAYS", default_value_t = 90)]
        expires_in_days: u32,
        #[command(flatten)]
        out: Json,
    },
    List {
        #[command(flatten)]
        out: Json,
    },
    /// Replace a system token's roles and/or permissions (those given).
    Update {
        id: String,
        #[command(flatten)]
        change: GrantChange,
        #[command(flatten)]
        out: Json,
    },
    Revoke {
        id: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminRoleCmd {
    /// Every permission and the built-in roles with theirs.
    Permissions {
        #[command(flatten)]
        out: Json,
    },
    /// Create a custom admin role (a named set of permissions).
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long = "permission", value_name = "PERMISSION", value_delimiter = ',')]
        permissions: Vec<String>,
        #[command(flatten)]
        out: Json,
    },
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Replace a custom role's permissions (its holders change with it) or description.
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "permission", value_name = "PERMISSION", value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        #[command(flatten)]
        out: Json,
    },
    /// Remove a custom role no credential holds.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        name: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The example portal's port on 127.0.0.1; 0 serves no portal.
    #[arg(long, value_name = "N", default_value_t = 8000)]
    pub portal_port: u16,
}

#[derive(Debug, Args)]
pub struct Json {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum TenantCmd {
    Create {
        slug: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Also create the tenant's first admin credential, an `lka_` token of this name (shown
        /// once, valid 90 days).
        #[arg(long, value_name = "NAME")]
        admin_token: Option<String>,
        /// The first credential's admin roles (default: tenant-admin).
        #[arg(long, value_name = "ROLE", value_delimiter = ',', requires = "admin_token")]
        admin_role: Vec<String>,
        /// Pin it to this region (`LATCHKEY_REGIONS`, docs/residency.md): its data, audit and
        /// backups stay in that region's database. Default: the home region.
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Move the tenant to another region (docs/residency.md): its rows are copied into that
    /// region's database, counted, a `tenant.move` event ends its audit chain there, and then
    /// they are deleted here. Sessions are not carried over (users sign in again). Asks for
    /// confirmation unless `--yes`.
    Move {
        #[command(flatten)]
        tenant: TenantArg,
        /// The region to move it to.
        #[arg(long, value_name = "REGION")]
        to: String,
        /// Don't ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        out: Json,
    },
    List {
        #[command(flatten)]
        out: Json,
    },
    Show {
        slug: String,
        #[command(flatten)]
        out: Json,
    },
    /// Change the display name or policy settings.
    Update {
        slug: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Boxed: the flags would make every command as large as this one.
        #[command(flatten)]
        policy: Box<PolicyFlags>,
        #[command(flatten)]
        out: Json,
    },
    /// Delete the tenant with all its users and clients (its audit chain is kept).
    Delete {
        slug: String,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Args, Default)]
pub struct PolicyFlags {
    /// Minimum password length (at least 8).
    #[arg(long, value_name = "N")]
    pub password_min_length: Option<u32>,
    /// Maximum password length (at least 64).
    #[arg(long, value_name = "N")]
    pub password_max_length: Option<u32>,
    #[arg(long, value_name = "BOOL")]
    pub password_require_lowercase: Option<bool>,
    #[arg(long, value_name = "BOOL")]
    pub password_require_uppercase: Option<bool>,
    #[arg(long, value_name = "BOOL")]
    pub password_require_digit: Option<bool>,
    #[arg(long, value_name = "BOOL")]
    pub password_require_symbol: Option<bool>,
    /// Days until a password must be changed; 0 turns expiry off.
    #[arg(long, value_name = "DAYS")]
    pub password_expiry_days: Option<u32>,
    /// Previous passwords that may not be reused; 0 turns history off.
    #[arg(long, value_name = "N")]
    pub password_history: Option<u32>,
    /// Session idle timeout in seconds.
    #[arg(long, value_name = "SECS")]
    pub session_idle_timeout: Option<u32>,
    /// Session absolute timeout in seconds.
    #[arg(long, value_name = "SECS")]
    pub session_absolute_timeout: Option<u32>,
    /// Second factors: off, optional (users may enrol) or required (every user, at sign-in).
    #[arg(long, value_name = "MODE")]
    pub mfa: Option<latchkey_core::MfaMode>,
    /// Which second factors users may enrol: passkey, totp (comma-separated).
    #[arg(long, value_name = "METHODS", value_delimiter = ',')]
    pub mfa_methods: Option<Vec<latchkey_core::MfaMethod>>,
    /// Trust a passkey model: its AAGUID and a PEM file of the CA its attestation chains to
    /// (repeatable). Any trusted model makes attestation required at registration.
    #[arg(long, value_name = "AAGUID=FILE")]
    pub passkey_trust: Vec<String>,
    /// Forget every trusted model: attestation `none` again.
    #[arg(long)]
    pub passkey_trust_none: bool,
    /// Logo shown on the tenant's pages (https URL; empty to remove).
    #[arg(long, value_name = "URL")]
    pub logo_url: Option<String>,
    /// Primary colour of the tenant's pages, `#rrggbb` (empty to remove).
    #[arg(long, value_name = "COLOR")]
    pub primary_color: Option<String>,
    /// Access-token lifetime in seconds (10 s to the key policy's maximum token lifetime).
    #[arg(long, value_name = "SECS")]
    pub access_token_ttl: Option<u32>,
    /// ID-token lifetime in seconds.
    #[arg(long, value_name = "SECS")]
    pub id_token_ttl: Option<u32>,
    /// Authorization-code lifetime in seconds (10 to 60).
    #[arg(long, value_name = "SECS")]
    pub code_ttl: Option<u32>,
    /// Refresh tokens unused this long die (seconds).
    #[arg(long, value_name = "SECS")]
    pub refresh_idle_ttl: Option<u32>,
    /// No refresh token of a grant lives longer than this (seconds).
    #[arg(long, value_name = "SECS")]
    pub refresh_absolute_ttl: Option<u32>,
    /// For this long after a rotation, the rotated refresh token back from its own client is
    /// refused without revoking the grant (a retry, a second tab); 0 to 60 seconds, 0 is off.
    #[arg(long, value_name = "SECS")]
    pub refresh_reuse_grace: Option<u32>,
    /// Days a signing key signs before its successor takes over.
    #[arg(long, value_name = "DAYS")]
    pub key_rotation_days: Option<u32>,
    /// Hours a new signing key is published in JWKS before it signs (at least 2).
    #[arg(long, value_name = "HOURS")]
    pub key_prepublish_hours: Option<u32>,
    /// Lifetime of the longest-lived token a key signs; a retired key stays published this long
    /// (plus a margin).
    #[arg(long, value_name = "SECS")]
    pub max_token_lifetime_secs: Option<u32>,
    /// Login risk scoring: on (the default) or off.
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub risk: Option<bool>,
    /// Risk score (0-100) from which a sign-in needs a second factor (refused without one).
    #[arg(long, value_name = "SCORE")]
    pub risk_stepup: Option<u8>,
    /// Risk score (0-100) from which a sign-in is refused.
    #[arg(long, value_name = "SCORE")]
    pub risk_deny: Option<u8>,
    /// Mail users when they sign in from a device not seen before.
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub risk_notify_new_device: Option<bool>,
    /// POST stepped-up and denied sign-ins to this URL (https, or http on loopback), signed
    /// with HMAC-SHA256; a new secret is generated and shown once. Empty to remove.
    #[arg(long, value_name = "URL")]
    pub risk_webhook: Option<String>,
    /// Days audit events are kept (at least 30).
    #[arg(long, value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Days a user's sign-in history for risk scoring is kept after its last use (at least 1).
    #[arg(long, value_name = "DAYS")]
    pub risk_history_retention_days: Option<u32>,
    /// Days (0 to 90) a user's own account deletion waits, the account closed meanwhile and
    /// restorable with `user restore`; 0 deletes at once.
    #[arg(long, value_name = "DAYS")]
    pub deletion_grace_days: Option<u32>,
    /// Days (0 to 90) an operator's erasure of a user (`user erase`) waits, the account closed
    /// meanwhile and restorable with `user restore`; 0 erases at once.
    #[arg(long, value_name = "DAYS")]
    pub erasure_grace_days: Option<u32>,
    /// Days without a sign-in after which a user is warned by mail that the account will be
    /// closed (docs/privacy.md#retention); `off`: never.
    #[arg(long, value_name = "DAYS|off", value_parser = days_or_off)]
    pub inactive_notify_days: Option<DaysOrOff>,
    /// Days without a sign-in after which an account is disabled; `off`: never.
    #[arg(long, value_name = "DAYS|off", value_parser = days_or_off)]
    pub inactive_disable_days: Option<DaysOrOff>,
    /// Days without a sign-in after which an account is deleted; `off`: never.
    #[arg(long, value_name = "DAYS|off", value_parser = days_or_off)]
    pub inactive_delete_days: Option<DaysOrOff>,
    /// Days a consent lasts unless given again; `off`: until withdrawn.
    #[arg(long, value_name = "DAYS|off", value_parser = days_or_off)]
    pub consent_days: Option<DaysOrOff>,
    /// Days accepted, revoked or expired invitations are kept.
    #[arg(long, value_name = "DAYS")]
    pub invitation_retention_days: Option<u32>,
    /// Days delivered or abandoned mail and webhook messages are kept.
    #[arg(long, value_name = "DAYS")]
    pub outbox_retention_days: Option<u32>,
    /// The version of the terms of service users must accept before a code is issued (asked
    /// again when it changes; docs/privacy.md); '' drops the requirement. Needs --terms-url.
    #[arg(long, value_name = "VERSION")]
    pub terms_version: Option<String>,
    /// The https address of the terms of service text.
    #[arg(long, value_name = "URL")]
    pub terms_url: Option<String>,
    /// Failed sign-ins an account gets before back-off starts (1 to 100).
    #[arg(long, value_name = "N")]
    pub throttle_account_failures: Option<u32>,
    /// Failed sign-ins across accounts a client (IPv4 address, IPv6 /64) gets before back-off
    /// starts (1 to 100000); successes are never counted.
    #[arg(long, value_name = "N")]
    pub throttle_address_failures: Option<u32>,
    /// A network exempt from the per-address limit, e.g. a corporate egress (repeatable; the
    /// per-account limit still applies).
    #[arg(long, value_name = "CIDR")]
    pub throttle_allow: Vec<String>,
    /// Forget every exempt network.
    #[arg(long)]
    pub throttle_allow_none: bool,
    /// Issue no authorization code to a user whose email address is not verified.
    #[arg(long, value_name = "BOOL", value_parser = on_off)]
    pub require_verified_email: Option<bool>,
    /// Self-service sign-up: off (default), invite-only, open or open-for-domains.
    #[arg(long, value_name = "MODE")]
    pub signup: Option<latchkey_core::SignupMode>,
    /// The domains open-for-domains admits, comma-separated ('' clears).
    #[arg(long, value_name = "DOMAINS")]
    pub signup_domains: Option<String>,
}

/// A number of days, or `off` for none (a retention step that never happens).
#[derive(Debug, Clone, Copy)]
pub struct DaysOrOff(pub Option<u32>);

fn days_or_off(value: &str) -> Result<DaysOrOff, String> {
    match value {
        "off" | "never" => Ok(DaysOrOff(None)),
        n => n
            .parse::<u32>()
            .map(|d| DaysOrOff(Some(d)))
            .map_err(|_| format!("{n:?}: expected a number of days or off")),
    }
}

fn on_off(value: &str) -> Result<bool, CliError> {
    match value {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        other => Err(CliError::NotOnOff(other.to_owned())),
    }
}

#[derive(Debug, Args)]
pub struct TenantArg {
    /// The tenant's slug.
    #[arg(long, value_name = "SLUG")]
    pub tenant: String,
}

impl TenantArg {
    pub fn slug(&self) -> &str {
        &self.tenant
    }
}

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    Create(Box<ClientCreate>),
    /// Change a client: each flag replaces that setting (a repeatable flag its whole list);
    /// `--patch FILE` applies a JSON merge patch (RFC 7396) as the admin API's PATCH does.
    /// Checked like a registration; audited `client.update` with what changed.
    Update(Box<ClientUpdate>),
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        #[command(flatten)]
        out: Json,
    },
    Delete {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        #[command(flatten)]
        out: Json,
    },
    /// Show the client's claim configuration, or replace it with `--set FILE` (JSON; `-` reads
    /// standard input) or `--reset` (docs/authorization.md).
    Claims {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        #[arg(long, value_name = "FILE", conflicts_with = "reset")]
        set: Option<std::path::PathBuf>,
        #[arg(long)]
        reset: bool,
        #[command(flatten)]
        out: Json,
    },
    /// Show the ID token, JWT access token and userinfo claims the client would get for a user
    /// now, with its claim mapping applied (nothing is minted).
    Preview {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        /// The user, by username or id.
        #[arg(long)]
        user: String,
        /// The scope to preview.
        #[arg(long, default_value = "openid profile email roles groups")]
        scope: String,
    },
    /// Issue a new secret (shown once). The old one stops working at once, or with `--overlap`
    /// keeps working that long, so the client can be redeployed with the new one first.
    RotateSecret {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        /// How long the old secret keeps working: minutes, hours or days (`30m`, `12h`, `7d`;
        /// at most 30d). Without it the old secret stops at once.
        #[arg(long, value_name = "DURATION")]
        overlap: Option<String>,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Args)]
pub struct ClientCreate {
    #[command(flatten)]
    pub tenant: TenantArg,
    #[arg(long)]
    pub name: String,
    /// A public client (SPA, native app): no secret, PKCE always.
    #[arg(long)]
    pub public: bool,
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<GrantType>,
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    #[arg(long, value_name = "METHOD")]
    pub auth_method: Option<AuthMethod>,
    /// Access-token format: jwt (RFC 9068) or opaque.
    #[arg(long, value_name = "FORMAT", default_value = "jwt")]
    pub access_token_format: AccessTokenFormat,
    /// Let a legacy confidential client skip PKCE.
    #[arg(long)]
    pub no_pkce: bool,
    /// May introspect tokens issued to other clients of the tenant.
    #[arg(long)]
    pub introspect_others: bool,
    /// First-party client: no consent screen.
    #[arg(long)]
    pub first_party: bool,
    /// For private_key_jwt: where the client publishes its public keys (https).
    #[arg(long, value_name = "URI")]
    pub jwks_uri: Option<String>,
    /// For private_key_jwt: a file holding the client's public JWK Set.
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub tokens: ClientTokenFlags,
    #[command(flatten)]
    pub logout: ClientLogoutFlags,
    #[command(flatten)]
    pub subject: ClientSubjectFlags,
    /// A resource indicator (RFC 8707) the client may ask client-credentials tokens for, as an
    /// absolute URI (repeatable). Without any, a `resource` parameter is refused.
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Vec<String>,
    #[command(flatten)]
    pub out: Json,
}

/// A client's logout notifications (docs/logout.md), for `client create` and `client update`.
#[derive(Debug, Default, Args)]
pub struct ClientLogoutFlags {
    /// Back-Channel Logout: where a signed logout token is POSTed when a session the client got
    /// tokens in ends (https, or http on loopback). An empty value removes it (update).
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens.
    #[arg(long, value_name = "BOOL")]
    pub backchannel_logout_session_required: Option<bool>,
    /// Front-Channel Logout: the client's page the logout page loads in an iframe. An empty
    /// value removes it (update).
    #[arg(long, value_name = "URI")]
    pub frontchannel_logout_uri: Option<String>,
    /// `iss` and `sid` are added to the front-channel URI.
    #[arg(long, value_name = "BOOL")]
    pub frontchannel_logout_session_required: Option<bool>,
}

/// What a client is told about users (docs/oidc.md): its `sub` and the claims it may get, for
/// `client create` and `client update`.
#[derive(Debug, Default, Args)]
pub struct ClientSubjectFlags {
    /// public (the user's id as `sub`, the default) or pairwise (a `sub` of its own per sector,
    /// OIDC Core §8).
    #[arg(long, value_name = "TYPE")]
    pub subject_type: Option<latchkey_core::SubjectType>,
    /// For a pairwise client: an https URL of a JSON array listing every redirect URI of the
    /// client; its host is the sector (needed when the redirect URIs are on several hosts).
    /// Fetched and checked now. An empty value removes it (update).
    #[arg(long, value_name = "URL")]
    pub sector_identifier_uri: Option<String>,
    /// The claims the client may get at most, comma-separated (`email,email_verified`),
    /// whatever scopes it asks for; protocol claims (`sub`, `iss`, `aud`, …) always go. An
    /// empty value removes the cap (update).
    #[arg(long, value_name = "CLAIMS")]
    pub allowed_claims: Option<String>,
}

impl ClientSubjectFlags {
    /// `--allowed-claims` as a list; `None` for an empty value.
    pub fn allowed_claims_list(&self) -> Option<Vec<String>> {
        let list: Vec<String> = self
            .allowed_claims
            .as_deref()?
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        (!list.is_empty()).then_some(list)
    }
}

/// A client's token settings, for `client create` and `client update`.
#[derive(Debug, Args)]
pub struct ClientTokenFlags {
    /// ID-token signing algorithm: RS256 (default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    pub id_token_alg: Option<String>,
    /// Access-token lifetime in seconds (default: the tenant's, 600).
    #[arg(long, value_name = "SECS")]
    pub access_token_ttl: Option<u32>,
    /// ID-token lifetime in seconds (default: the tenant's, 600).
    #[arg(long, value_name = "SECS")]
    pub id_token_ttl: Option<u32>,
    /// Refresh-token idle lifetime in seconds (default: the tenant's, 30 days).
    #[arg(long, value_name = "SECS")]
    pub refresh_idle_ttl: Option<u32>,
    /// Refresh-token absolute lifetime in seconds (default: the tenant's, 90 days).
    #[arg(long, value_name = "SECS")]
    pub refresh_absolute_ttl: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ClientUpdate {
    #[command(flatten)]
    pub tenant: TenantArg,
    pub client_id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Replaces the redirect URIs (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Replaces the post-logout redirect URIs (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Replaces the grant types (repeatable).
    #[arg(long = "grant", value_name = "GRANT")]
    pub grants: Vec<GrantType>,
    /// Replaces the scopes the client may ask for (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Between the secret methods, or to private_key_jwt (which drops the secret; give keys).
    #[arg(long, value_name = "METHOD")]
    pub auth_method: Option<AuthMethod>,
    #[arg(long, value_name = "FORMAT")]
    pub access_token_format: Option<AccessTokenFormat>,
    #[arg(long, value_name = "BOOL")]
    pub require_pkce: Option<bool>,
    #[arg(long, value_name = "BOOL")]
    pub introspect_others: Option<bool>,
    #[arg(long, value_name = "BOOL")]
    pub first_party: Option<bool>,
    #[arg(long, value_name = "URI")]
    pub jwks_uri: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub tokens: ClientTokenFlags,
    #[command(flatten)]
    pub logout: ClientLogoutFlags,
    #[command(flatten)]
    pub subject: ClientSubjectFlags,
    /// Replaces the resource indicators (repeatable).
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Vec<String>,
    /// A JSON merge patch over the client's JSON form (`-`: standard input); the flags apply
    /// on top of it.
    #[arg(long, value_name = "FILE")]
    pub patch: Option<std::path::PathBuf>,
    /// Refuse (exit 1) unless the client is still at this version (its `updated_at` in Unix
    /// ms, the admin API's ETag), so a change made meanwhile is not overwritten.
    #[arg(long, value_name = "VERSION")]
    pub if_version: Option<i64>,
    #[command(flatten)]
    pub out: Json,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the initial password from standard input (never from the command line).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        out: Json,
    },
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    Show(UserRef),
    Disable(UserRef),
    /// Enable a disabled user (an account pending deletion is restored).
    Enable(UserRef),
    /// Delete the user at once, with their sessions, grants and tokens, factors, passkeys,
    /// memberships and roles. Audited.
    Delete(UserRef),
    /// Erase the user (right to erasure, docs/privacy.md#erasure): their rows and the key their
    /// personal data is sealed under, so no copy of it (a backup included) opens again; at
    /// once, or after the tenant's `accounts.erasure_grace_days` (the account is closed
    /// meanwhile). Asks for confirmation; audited with the reason.
    Erase {
        #[command(flatten)]
        user: UserRef,
        /// Why: a request or ticket number (it stays in the audit log, so not the person's name).
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Seal the tenant's users written before personal data was sealed under per-user keys
    /// (docs/privacy.md#erasure). Run once every node runs this release: an older node can't
    /// read a sealed user. Audited per user (`user.seal`).
    Seal {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Cancel the pending deletion or erasure of an account (the tenant's grace period): active
    /// again. Audited.
    Restore(UserRef),
    /// Set a new password, read from standard input.
    SetPassword(UserRef),
    /// Change the email address (mails a verification link) or display name ('' clears).
    Update {
        #[command(flatten)]
        user: UserRef,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Mark the user's email address verified (the operator vouches for it). Audited.
    VerifyEmail(UserRef),
    /// Everything held about the user, as JSON on standard output (right of access and
    /// portability): profile, attributes, groups and roles, factors without secrets, sessions
    /// (from Redis; the embedded store is the server's, use the admin API), consents and
    /// grants, linked identities, sign-in history and the user's audit events. Audited.
    Export {
        #[command(flatten)]
        tenant: TenantArg,
        /// Username (or user id).
        user: String,
    },
    /// A user's second factors.
    #[command(subcommand)]
    Mfa(MfaCmd),
    /// What the user allowed clients: consents and live grants (refresh tokens).
    #[command(subcommand)]
    Grants(GrantsCmd),
}

#[derive(Debug, Subcommand)]
pub enum GrantsCmd {
    /// The user's consents and live grants, by client.
    List(UserRef),
    /// Withdraw the user's consents and revoke their grants with every token, offline ones
    /// too, for one client (`--client`) or all; their next refresh fails. Audited.
    Revoke {
        #[command(flatten)]
        user: UserRef,
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MfaCmd {
    /// Show the user's second factors and recovery codes left.
    List(MfaUser),
    /// Remove every second factor and recovery code of the user and end their sessions (for a
    /// user who lost their device). Audited.
    Reset(MfaUser),
    /// Remove one second factor: `totp`, or a passkey by the id `mfa list` shows. Audited.
    Remove {
        #[command(flatten)]
        user: MfaUser,
        #[arg(long, value_name = "totp|PASSKEY_ID")]
        factor: String,
    },
}

#[derive(Debug, Args)]
pub struct MfaUser {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Username (or user id).
    #[arg(long)]
    pub username: String,
    #[command(flatten)]
    pub out: Json,
}

#[derive(Debug, Args)]
pub struct UserRef {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Username (or user id).
    pub user: String,
    #[command(flatten)]
    pub out: Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Walk the hash chain; exits 1 naming the first broken sequence number.
    Verify {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
    /// Write the chain (or the part a filter selects) to standard output. JSON lines keep the
    /// hashes, so an export can be verified elsewhere.
    Export {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Events matching the filters, oldest first (at most --limit).
    Search {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[command(flatten)]
        out: Json,
    },
    /// Apply the tenant's audit and risk-history retention now (the server does it hourly).
    Retention {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        out: Json,
    },
}

#[derive(Debug, Args, Default)]
pub struct AuditFilterArgs {
    /// Events where this user id is the actor or the target.
    #[arg(long, value_name = "USER_ID")]
    pub user: Option<String>,
    /// An action (`login.failure`) or a prefix with `*` (`risk.*`).
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// From this instant (RFC 3339, e.g. 2026-11-01T00:00:00Z, or a date 2026-11-01).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this instant (RFC 3339 or a date).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum InviteCmd {
    /// Invite EMAIL: a single-use link is mailed to it (through the outbox). Refused when a
    /// user with the email exists. Audited.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// The invited address; the account's email (verified by the link).
        email: String,
        /// A group the new user joins (repeatable).
        #[arg(long = "group", value_name = "NAME")]
        groups: Vec<String>,
        /// The account's username (default: the email address).
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        /// How long the link works: minutes, hours or days (`90m`, `12h`, `7d`; at most 90d).
        #[arg(long, value_name = "DURATION", default_value = "7d")]
        expires_in: String,
        #[command(flatten)]
        out: Json,
    },
    /// The tenant's invitations, newest first.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only invitations in this state.
        #[arg(long, value_parser = ["pending", "accepted", "expired", "revoked"])]
        status: Option<String>,
        #[command(flatten)]
        out: Json,
    },
    /// Withdraw a pending invitation: its link stops working. Audited.
    Revoke(InvitationRef),
    /// Mail a new link for a pending or expired invitation (the old link stops working), valid
    /// for `--expires-in` from now. Audited.
    Resend {
        #[command(flatten)]
        invitation: InvitationRef,
        #[arg(long, value_name = "DURATION", default_value = "7d")]
        expires_in: String,
    },
}

#[derive(Debug, Args)]
pub struct InvitationRef {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// The invitation's id (see `invite list`).
    pub id: String,
    #[command(flatten)]
    pub out: Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
