//! `latchkey saml …`: a tenant's SAML connections as operators drive them. Metadata is read
//! from a file or fetched (https, or http on loopback; 10 s, 1 MiB), parsed by `latchkey-saml`,
//! and stored with a fresh SP key sealed under the tenant's data key (row = connection id).

use crate::CliError;
use crate::admin::{actor, done, find_tenant};
use crate::cli::{SamlAdd, SamlCmd, SamlFlags, SamlUpdate};
use crate::output::{print_json, rfc3339};
use latchkey_core::{Clock, IdpDescriptor, SamlConnection, SamlOptions, SystemClock, Tenant};
use latchkey_server::Config;
use latchkey_store::{Db, NewSamlConnection, RoleRepo, SamlConnectionUpdate, SamlRepo};
use serde_json::{Value, json};

use latchkey_services::saml::{METADATA_REFRESH_MS as REFRESH_EVERY_MS, sp_key_aad};

const MAX_METADATA_BYTES: usize = 1 << 20;

pub fn run(config: &Config, db: &Db, cmd: SamlCmd) -> Result<(), CliError> {
    let now = SystemClock.now_millis();
    match cmd {
        SamlCmd::Add(a) => add(config, db, &a, now),
        SamlCmd::List { t, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let all = db.list_saml_connections(&t.id)?;
            if out.json {
                print_json(&all.iter().map(|s| connection_json(config, &t, s)).collect());
            } else {
                for s in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        s.name,
                        s.display_name,
                        s.idp.entity_id,
                        s.options.domains.join(",")
                    );
                }
            }
            Ok(())
        }
        SamlCmd::Show { t, name, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let s = find(db, &t, &name)?;
            show(out.json, &connection_json(config, &t, &s));
            Ok(())
        }
        SamlCmd::Update(u) => update(config, db, &u, now),
        SamlCmd::Remove { t, name, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let s = find(db, &t, &name)?;
            db.delete_saml_connection(&t.id, &actor(), &s.id)?;
            done(
                out.json,
                json!({"deleted": "saml_connection", "name": s.name, "id": s.id}),
                &format!("removed SAML connection {} (id {})", s.name, s.id),
            );
            Ok(())
        }
        SamlCmd::RefreshMetadata { t, name, out } => {
            let t = find_tenant(db, &t.tenant)?;
            let s = find(db, &t, &name)?;
            if s.metadata_url.is_none() {
                return Err(CliError::Input(format!(
                    "SAML connection {name:?} has its metadata from a file; replace it with `saml update --metadata-file` or `--metadata-url`"
                )));
            }
            match block_on(latchkey_services::saml::refresh_connection(db, &s, now))?
                .map_err(|e| e.to_string())
            {
                Ok(after) => {
                    let mut v = connection_json(config, &t, &after);
                    v["changed"] = json!(s.idp != after.idp);
                    show(out.json, &v);
                    Ok(())
                }
                Err(reason) => Err(CliError::Runtime(format!(
                    "refreshing {name:?} failed (the last good metadata stays in use): {reason}"
                ))),
            }
        }
    }
}

fn find(db: &Db, t: &Tenant, name: &str) -> Result<SamlConnection, CliError> {
    db.saml_connection_by_name(&t.id, name)?
        .ok_or_else(|| CliError::Input(format!("no SAML connection {name:?} in tenant {:?}", t.slug)))
}

fn add(config: &Config, db: &Db, a: &SamlAdd, now: i64) -> Result<(), CliError> {
    let t = find_tenant(db, &a.t.tenant)?;
    let (idp, metadata_url) = load_metadata(a.metadata_file.as_deref(), a.metadata_url.as_deref(), now)?
        .ok_or_else(|| CliError::Input("give --metadata-file or --metadata-url".into()))?;
    let defaults = SamlOptions {
        sign_requests: idp.wants_signed_requests,
        ..SamlOptions::default()
    };
    let options = apply_flags(db, &t, defaults, &a.opts)?;
    // Open the key ring before anything is generated: no connection without its sealed key.
    let ring = crate::keys::open_ring(config, db)?;
    let sp = latchkey_saml::generate_sp_key(&format!("{} {} SAML SP", t.slug, a.name), now)
        .map_err(|e| CliError::Runtime(format!("generating the SP key: {e}")))?;
    let id = db.new_saml_connection_id();
    let sealed = ring.seal(&t.id, sp_key_aad(&t, &id), &sp.pkcs8_der)?;
    let next_refresh_at = metadata_url.as_ref().map(|_| now + REFRESH_EVERY_MS);
    let s = db.create_saml_connection(
        &t.id,
        &actor(),
        &NewSamlConnection {
            id,
            name: a.name.clone(),
            display_name: a.display_name.clone().unwrap_or_else(|| a.name.clone()),
            idp,
            metadata_url,
            options,
            sp_certificate: sp.certificate,
            sp_key_sealed: sealed,
            next_refresh_at,
        },
    )?;
    show(a.out.json, &connection_json(config, &t, &s));
    Ok(())
}

fn update(config: &Config, db: &Db, u: &SamlUpdate, now: i64) -> Result<(), CliError> {
    let t = find_tenant(db, &u.t.tenant)?;
    let s = find(db, &t, &u.name)?;
    let mut change = SamlConnectionUpdate {
        display_name: u.display_name.clone(),
        ..SamlConnectionUpdate::default()
    };
    if let Some((idp, url)) = load_metadata(u.metadata_file.as_deref(), u.metadata_url.as_deref(), now)? {
        change.next_refresh_at = Some(url.as_ref().map(|_| now + REFRESH_EVERY_MS));
        change.metadata_url = Some(url);
        change.idp = Some(idp);
    }
    let mut options = apply_flags(db, &t, s.options.clone(), &u.opts)?;
    if u.no_role_map {
        options.role_map.clear();
    }
    if options != s.options {
        change.options = Some(options);
    }
    let after = db.update_saml_connection(&t.id, &actor(), &s.id, &change)?;
    show(u.out.json, &connection_json(config, &t, &after));
    Ok(())
}

/// Reads or fetches and parses the metadata; `None` when neither source was given.
fn load_metadata(
    file: Option<&std::path::Path>,
    url: Option<&str>,
    now: i64,
) -> Result<Option<(IdpDescriptor, Option<String>)>, CliError> {
    match (file, url) {
        (Some(f), _) => {
            let text = std::fs::read(f)
                .map_err(|e| CliError::Input(format!("--metadata-file {}: {e}", f.display())))?;
            if text.len() > MAX_METADATA_BYTES {
                return Err(CliError::Input(format!(
                    "--metadata-file {}: larger than 1 MiB",
                    f.display()
                )));
            }
            let text = String::from_utf8(text)
                .map_err(|_| CliError::Input(format!("--metadata-file {}: not UTF-8", f.display())))?;
            Ok(Some((
                parse(&format!("metadata in {}", f.display()), &text, now)?,
                None,
            )))
        }
        (None, Some(u)) => {
            check_url(u)?;
            let text = fetch(u)?;
            Ok(Some((
                parse(&format!("metadata from {u}"), &text, now)?,
                Some(u.to_owned()),
            )))
        }
        (None, None) => Ok(None),
    }
}

fn parse(source: &str, text: &str, now: i64) -> Result<IdpDescriptor, CliError> {
    latchkey_saml::parse_idp_metadata(text, now)
        .map_err(|e| CliError::Input(format!("{source} refused: {e}")))
}

fn check_url(u: &str) -> Result<(), CliError> {
    latchkey_services::saml::check_metadata_url(u)
        .map(drop)
        .map_err(|e| CliError::Input(format!("--metadata-url: {e}")))
}

/// Runs `f` on a small runtime of its own (the CLI is synchronous).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    Ok(rt.block_on(f))
}

/// GETs the metadata (no redirects, 10 s, at most 1 MiB); a failure is a runtime error (exit 1).
fn fetch(u: &str) -> Result<String, CliError> {
    check_url(u)?;
    block_on(latchkey_services::saml::fetch_metadata(u))?.map_err(|e| CliError::Runtime(e.to_string()))
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Applies the option flags to `o`; roles in `--role-map` must exist in the tenant.
fn apply_flags(db: &Db, t: &Tenant, mut o: SamlOptions, f: &SamlFlags) -> Result<SamlOptions, CliError> {
    if let Some(d) = &f.domains {
        o.domains = d
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
    }
    for (flag, target) in [
        (f.allow_idp_initiated, &mut o.allow_idp_initiated),
        (f.jit, &mut o.jit),
        (f.link_existing, &mut o.link_existing),
        (f.trust_idp_mfa, &mut o.trust_idp_mfa),
        (f.sign_requests, &mut o.sign_requests),
    ] {
        if let Some(v) = flag {
            *target = v;
        }
    }
    for m in &f.map {
        let (key, attr) = m.split_once('=').ok_or_else(|| {
            CliError::Input(format!(
                "--map {m:?}: expected email=ATTR, name=ATTR or groups=ATTR"
            ))
        })?;
        let attr = Some(attr.trim().to_owned()).filter(|a| !a.is_empty());
        match key.trim() {
            "email" => o.mapping.email = attr,
            "name" => o.mapping.name = attr,
            "groups" => o.mapping.groups = attr,
            other => {
                return Err(CliError::Input(format!(
                    "--map {other:?}: map email, name or groups"
                )));
            }
        }
    }
    if !f.role_map.is_empty() {
        let roles: Vec<String> = db.list_roles(&t.id)?.into_iter().map(|r| r.name).collect();
        let mut map = Vec::with_capacity(f.role_map.len());
        for entry in &f.role_map {
            let (group, role) = entry
                .split_once('=')
                .map(|(g, r)| (g.trim(), r.trim()))
                .filter(|(g, r)| !g.is_empty() && !r.is_empty())
                .ok_or_else(|| CliError::Input(format!("--role-map {entry:?}: expected GROUP=ROLE")))?;
            if !roles.iter().any(|r| r == role) {
                return Err(CliError::Input(format!(
                    "--role-map {entry:?}: no role {role:?} in tenant {:?}",
                    t.slug
                )));
            }
            let pair = (group.to_owned(), role.to_owned());
            if !map.contains(&pair) {
                map.push(pair);
            }
        }
        o.role_map = map;
    }
    Ok(o)
}

/// A stored certificate as the operator sees it (or why it can't be read).
fn cert_json(b64: &str, now: i64) -> Value {
    match latchkey_saml::certs::info(b64) {
        Ok(i) => json!({
            "subject": i.subject, "sha256": i.sha256,
            "not_before": rfc3339(i.not_before), "not_after": rfc3339(i.not_after),
            "valid_now": i.valid_at(now),
        }),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// What `show` prints. The SP entity id is its metadata URL.
fn connection_json(config: &Config, t: &Tenant, s: &SamlConnection) -> Value {
    let now = SystemClock.now_millis();
    let base = format!("{}/saml/{}", config.issuer(&t.slug), s.name);
    let sp_cert = cert_json(&s.sp_certificate, now);
    json!({
        "id": s.id,
        "tenant": t.slug,
        "name": s.name,
        "display_name": s.display_name,
        "idp": {
            "entity_id": s.idp.entity_id,
            "sso_url": s.idp.sso_url,
            "sso_binding": s.idp.sso_binding,
            "wants_signed_requests": s.idp.wants_signed_requests,
            "certificates": s.idp.certificates.iter().map(|c| cert_json(c, now)).collect::<Vec<_>>(),
        },
        "options": s.options,
        "metadata": {
            "source": if s.metadata_url.is_some() { "url" } else { "file" },
            "url": s.metadata_url,
            "refreshed_at": s.metadata_refreshed_at.map(rfc3339),
            "error": s.metadata_error,
            "next_refresh_at": s.next_refresh_at.map(rfc3339),
        },
        "sp": {
            "entity_id": format!("{base}/metadata"),
            "metadata_url": format!("{base}/metadata"),
            "acs_url": format!("{base}/acs"),
            "certificate_sha256": sp_cert["sha256"],
            "certificate_not_after": sp_cert["not_after"],
        },
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
    })
}

/// JSON with `--json`; otherwise a readable summary.
fn show(json: bool, v: &Value) {
    if json {
        print_json(v);
        return;
    }
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let opts = &v["options"];
    let mapping = &opts["mapping"];
    let flag = |k: &str| on_off(opts[k].as_bool().unwrap_or(false));
    let mut lines = vec![
        ("name", text(&v["name"])),
        ("display_name", text(&v["display_name"])),
        ("id", text(&v["id"])),
        ("idp_entity_id", text(&v["idp"]["entity_id"])),
        (
            "idp_sso",
            format!(
                "{} ({})",
                text(&v["idp"]["sso_url"]),
                text(&v["idp"]["sso_binding"])
            ),
        ),
    ];
    for c in v["idp"]["certificates"].as_array().into_iter().flatten() {
        lines.push((
            "idp_certificate",
            match c.get("error") {
                Some(e) => text(e),
                None => format!(
                    "{}  sha256 {}  valid {} .. {}",
                    text(&c["subject"]),
                    text(&c["sha256"]),
                    text(&c["not_before"]),
                    text(&c["not_after"])
                ),
            },
        ));
    }
    let domains = opts["domains"]
        .as_array()
        .map(|d| d.iter().map(&text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let role_map = opts["role_map"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| format!("{}={}", text(&p[0]), text(&p[1])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let or_default = |v: &Value, d: &str| if v.is_null() { d.to_owned() } else { text(v) };
    lines.extend([
        ("domains", if domains.is_empty() { "-".into() } else { domains }),
        ("allow_idp_initiated", flag("allow_idp_initiated").into()),
        ("jit", flag("jit").into()),
        ("link_existing", flag("link_existing").into()),
        ("trust_idp_mfa", flag("trust_idp_mfa").into()),
        ("sign_requests", flag("sign_requests").into()),
        (
            "mapping",
            format!(
                "email={} name={} groups={}",
                or_default(&mapping["email"], "(NameID)"),
                or_default(&mapping["name"], "-"),
                or_default(&mapping["groups"], "-")
            ),
        ),
        (
            "role_map",
            if role_map.is_empty() { "-".into() } else { role_map },
        ),
        (
            "metadata",
            match v["metadata"]["url"].as_str() {
                Some(u) => format!("from {u}"),
                None => "from a file (not refreshed)".into(),
            },
        ),
        (
            "metadata_refreshed_at",
            or_default(&v["metadata"]["refreshed_at"], "-"),
        ),
        ("metadata_error", or_default(&v["metadata"]["error"], "-")),
        (
            "next_refresh_at",
            or_default(&v["metadata"]["next_refresh_at"], "-"),
        ),
        ("sp_entity_id", text(&v["sp"]["entity_id"])),
        ("sp_metadata_url", text(&v["sp"]["metadata_url"])),
        ("sp_acs_url", text(&v["sp"]["acs_url"])),
        ("sp_certificate_sha256", text(&v["sp"]["certificate_sha256"])),
    ]);
    if let Some(changed) = v.get("changed") {
        lines.push(("changed", text(changed)));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, val) in lines {
        println!("{k:width$}  {val}");
    }
}
