//! Login risk scoring as a pure function: what is known about a sign-in attempt (`Signals`)
//! goes in, a score from 0 to 100 comes out with every reason that added to it and its weight,
//! so an operator can see why a decision was made. The tenant's bands turn the score into allow,
//! step-up or deny. Nothing here does I/O; the server gathers the signals.
//!
//! The user never learns which reason fired: the decision, not the reasons, reaches the page.

mod history;

pub use history::{Attempt, History};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What is known about one sign-in attempt. `None` means "not known" (no GeoIP database, no
/// history yet) and never adds risk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// The long-lived device cookie is one this user signed in with before.
    pub known_device: Option<bool>,
    /// The network (IPv4 /24, IPv6 /48) is one this user signed in from before.
    pub known_network: Option<bool>,
    /// The autonomous system is one this user signed in from before (GeoIP ASN database).
    pub known_asn: Option<bool>,
    /// Speed in km/h needed to get here from the last successful sign-in's location.
    pub travel_kmh: Option<f64>,
    /// Failed attempts on this account in the last hour.
    pub recent_failures: u32,
    /// Distinct accounts that failed from this network in the last few minutes (credential
    /// stuffing).
    pub accounts_from_network: u32,
    /// The address is on the tenant's deny-list.
    pub denylisted: bool,
    /// The hour is one this user has never signed in at (optional signal).
    pub unusual_hour: Option<bool>,
}

/// How much each signal adds. Defaults are documented in docs/risk.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    pub unknown_device: u8,
    pub unknown_network: u8,
    pub unknown_asn: u8,
    pub impossible_travel: u8,
    /// Speed above which travel is impossible (airliners cruise below 1000 km/h).
    pub impossible_travel_kmh: f64,
    /// Per recent failure, up to `failures_cap`.
    pub per_failure: u8,
    pub failures_cap: u8,
    /// When more than `stuffing_accounts` accounts were tried from the network.
    pub credential_stuffing: u8,
    pub stuffing_accounts: u32,
    pub denylisted: u8,
    pub unusual_hour: u8,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            unknown_device: 20,
            unknown_network: 15,
            unknown_asn: 10,
            impossible_travel: 45,
            impossible_travel_kmh: 1000.0,
            per_failure: 5,
            failures_cap: 25,
            credential_stuffing: 40,
            stuffing_accounts: 5,
            denylisted: 100,
            unusual_hour: 5,
        }
    }
}

/// One reason that added to a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// A stable name: `unknown_device`, `unknown_network`, `unknown_asn`, `impossible_travel`,
    /// `recent_failures`, `credential_stuffing`, `denylisted`, `unusual_hour`.
    pub signal: &'static str,
    pub weight: u8,
    /// For the operator: the value that fired (never shown to the user).
    pub detail: String,
}

/// A score and everything that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// 0 (nothing unusual) to 100.
    pub score: u8,
    pub reasons: Vec<Reason>,
}

/// Scores an attempt: the sum of the weights of the signals that fired, capped at 100.
pub fn assess(s: &Signals, w: &Weights) -> Assessment {
    let mut reasons = Vec::new();
    let mut add = |signal: &'static str, weight: u8, detail: String| {
        if weight > 0 {
            reasons.push(Reason {
                signal,
                weight,
                detail,
            });
        }
    };
    if s.known_device == Some(false) {
        add(
            "unknown_device",
            w.unknown_device,
            "a device not seen for this user".into(),
        );
    }
    if s.known_network == Some(false) {
        add(
            "unknown_network",
            w.unknown_network,
            "a network not seen for this user".into(),
        );
    }
    if s.known_asn == Some(false) {
        add(
            "unknown_asn",
            w.unknown_asn,
            "an autonomous system not seen for this user".into(),
        );
    }
    if let Some(kmh) = s
        .travel_kmh
        .filter(|k| k.is_finite() && *k > w.impossible_travel_kmh)
    {
        add(
            "impossible_travel",
            w.impossible_travel,
            format!("{kmh:.0} km/h since the last sign-in"),
        );
    }
    if s.recent_failures > 0 {
        let weight = u32::from(w.per_failure)
            .saturating_mul(s.recent_failures)
            .min(u32::from(w.failures_cap));
        add(
            "recent_failures",
            u8::try_from(weight).unwrap_or(u8::MAX),
            format!("{} failed attempts in the last hour", s.recent_failures),
        );
    }
    if s.accounts_from_network > w.stuffing_accounts {
        add(
            "credential_stuffing",
            w.credential_stuffing,
            format!("{} accounts failed from this network", s.accounts_from_network),
        );
    }
    if s.denylisted {
        add(
            "denylisted",
            w.denylisted,
            "the address is on the deny-list".into(),
        );
    }
    if s.unusual_hour == Some(true) {
        add(
            "unusual_hour",
            w.unusual_hour,
            "an hour this user never signs in at".into(),
        );
    }
    let total: u32 = reasons.iter().map(|r| u32::from(r.weight)).sum();
    Assessment {
        score: u8::try_from(total.min(100)).unwrap_or(100),
        reasons,
    }
}

/// What the tenant's policy does with a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    /// Ask for a second factor, even where MFA is optional.
    StepUp,
    /// Refuse, with the same message as a wrong password.
    Deny,
}

/// Score bands of a tenant: at or above `step_up` asks for a second factor, at or above `deny`
/// refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bands {
    pub step_up: u8,
    pub deny: u8,
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            step_up: 40,
            deny: 80,
        }
    }
}

pub fn decide(score: u8, bands: &Bands) -> Decision {
    if score >= bands.deny {
        Decision::Deny
    } else if score >= bands.step_up {
        Decision::StepUp
    } else {
        Decision::Allow
    }
}

/// The client an address stands for in brute-force counters: an IPv4 address itself, an IPv6
/// address's /64 (one subscriber gets a whole /64, so rotating inside it is one client).
pub fn throttle_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The network an address belongs to for "seen before": IPv4 /24, IPv6 /48.
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// Great-circle distance in km between two (latitude, longitude) points in degrees.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h =
        ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// The speed needed to cover `km` in `elapsed_secs` (a minimum of one minute, so two sign-ins
/// in the same second from one city are not "infinitely fast").
pub fn speed_kmh(km: f64, elapsed_secs: i64) -> f64 {
    let hours = (elapsed_secs.max(60) as f64) / 3600.0;
    km / hours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn familiar() -> Signals {
        Signals {
            known_device: Some(true),
            known_network: Some(true),
            known_asn: Some(true),
            travel_kmh: Some(30.0),
            ..Signals::default()
        }
    }

    #[test]
    fn a_familiar_sign_in_scores_zero_and_says_nothing() {
        let a = assess(&familiar(), &Weights::default());
        assert_eq!(
            a,
            Assessment {
                score: 0,
                reasons: vec![]
            }
        );
        assert_eq!(decide(a.score, &Bands::default()), Decision::Allow);
        // Unknown is not suspicious: no history, no GeoIP.
        assert_eq!(assess(&Signals::default(), &Weights::default()).score, 0);
    }

    #[test]
    fn every_reason_is_named_with_its_weight() {
        let s = Signals {
            known_device: Some(false),
            known_network: Some(false),
            ..familiar()
        };
        let a = assess(&s, &Weights::default());
        assert_eq!(a.score, 35);
        let named: Vec<(&str, u8)> = a.reasons.iter().map(|r| (r.signal, r.weight)).collect();
        assert_eq!(named, [("unknown_device", 20), ("unknown_network", 15)]);
        assert_eq!(decide(a.score, &Bands::default()), Decision::Allow);
        let s = Signals {
            known_asn: Some(false),
            ..s
        };
        assert_eq!(
            decide(assess(&s, &Weights::default()).score, &Bands::default()),
            Decision::StepUp
        );
    }

    #[test]
    fn impossible_travel_stuffing_and_deny_lists() {
        let w = Weights::default();
        // Paris to Sydney in an hour.
        let km = distance_km((48.8566, 2.3522), (-33.8688, 151.2093));
        assert!((16_900.0..17_000.0).contains(&km), "{km}");
        let travel = Signals {
            travel_kmh: Some(speed_kmh(km, 3600)),
            ..familiar()
        };
        let a = assess(&travel, &w);
        assert_eq!(a.reasons[0].signal, "impossible_travel");
        assert_eq!(decide(a.score, &Bands::default()), Decision::StepUp);
        assert!(speed_kmh(5.0, 1) < 1000.0, "a minimum of a minute");
        let stuffing = Signals {
            accounts_from_network: 30,
            known_device: Some(false),
            known_network: Some(false),
            known_asn: Some(false),
            ..familiar()
        };
        assert_eq!(
            decide(assess(&stuffing, &w).score, &Bands::default()),
            Decision::Deny
        );
        let denied = Signals {
            denylisted: true,
            ..familiar()
        };
        let a = assess(&denied, &w);
        assert_eq!(a.score, 100);
        assert_eq!(decide(a.score, &Bands::default()), Decision::Deny);
    }

    #[test]
    fn failures_add_up_to_a_cap_and_bands_are_the_tenants() {
        let w = Weights::default();
        let few = Signals {
            recent_failures: 2,
            ..familiar()
        };
        assert_eq!(assess(&few, &w).score, 10);
        let many = Signals {
            recent_failures: 1000,
            ..familiar()
        };
        assert_eq!(assess(&many, &w).score, 25);
        let strict = Bands {
            step_up: 10,
            deny: 50,
        };
        assert_eq!(decide(10, &strict), Decision::StepUp);
        assert_eq!(decide(9, &strict), Decision::Allow);
        assert_eq!(decide(50, &strict), Decision::Deny);
    }

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        assert_eq!(network_of("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            network_of("2001:db8:abcd:12::1".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
    }

    #[test]
    fn throttle_keys_are_the_ipv4_address_or_the_ipv6_slash_64() {
        let key = |ip: &str| throttle_key(ip.parse().unwrap());
        assert_eq!(key("203.0.113.77"), "203.0.113.77");
        assert_eq!(key("::ffff:203.0.113.77"), "203.0.113.77", "IPv4-mapped is IPv4");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }
}
