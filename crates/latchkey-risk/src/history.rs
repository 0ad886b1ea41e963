//! What a user's earlier successful sign-ins looked like, kept small: the last few devices,
//! networks and autonomous systems, the last location, and the hours of the day seen. The
//! server stores it sealed (it is personal data) and turns it into `Signals` for each attempt.

use crate::{Signals, distance_km, speed_kmh};
use serde::{Deserialize, Serialize};

/// How many of each kind are remembered; the least recently seen goes first.
pub const MAX_DEVICES: usize = 10;
pub const MAX_NETWORKS: usize = 20;
pub const MAX_ASNS: usize = 10;
/// Sign-ins needed before "an hour never seen" means anything.
pub const HOURS_BASELINE: u32 = 20;

/// One sign-in attempt as the history sees it. `device` is a digest of the device cookie,
/// never the cookie itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Unix milliseconds.
    pub at: i64,
    pub device: Option<String>,
    /// `network_of` the client address.
    pub network: String,
    pub asn: Option<u32>,
    /// (latitude, longitude) when a GeoIP city database knows the address.
    pub location: Option<(f64, f64)>,
}

impl Attempt {
    /// The hour of the day (UTC) of the attempt.
    fn hour(&self) -> u32 {
        u32::try_from(self.at.div_euclid(3_600_000).rem_euclid(24)).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen<T> {
    value: T,
    /// Unix milliseconds of the last sign-in with it.
    last: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Place {
    lat: f64,
    lon: f64,
    at: i64,
}

/// A user's bounded sign-in history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct History {
    devices: Vec<Seen<String>>,
    networks: Vec<Seen<String>>,
    asns: Vec<Seen<u32>>,
    place: Option<Place>,
    /// Bit `h` set: a sign-in happened at hour `h` (UTC).
    hours: u32,
    sign_ins: u32,
}

fn knows<T: PartialEq>(seen: &[Seen<T>], value: Option<&T>) -> Option<bool> {
    if seen.is_empty() {
        return None; // no baseline yet: nothing is "new"
    }
    value.map(|v| seen.iter().any(|s| &s.value == v))
}

fn remember<T: PartialEq>(seen: &mut Vec<Seen<T>>, value: T, at: i64, max: usize) {
    seen.retain(|s| s.value != value);
    seen.push(Seen { value, last: at });
    if seen.len() > max {
        seen.sort_by_key(|s| std::cmp::Reverse(s.last));
        seen.truncate(max);
    }
}

impl History {
    /// What this history says about `a`: the familiarity and travel signals. The caller adds
    /// failures, velocity and the deny-list, which are not per-user history.
    pub fn signals(&self, a: &Attempt) -> Signals {
        let travel_kmh = match (self.place, a.location) {
            (Some(p), Some(here)) => Some(speed_kmh(distance_km((p.lat, p.lon), here), (a.at - p.at) / 1000)),
            _ => None,
        };
        // A browser without the device cookie is an unknown device, not an unknown answer.
        let known_device =
            (!self.devices.is_empty()).then(|| knows(&self.devices, a.device.as_ref()) == Some(true));
        Signals {
            known_device,
            known_network: knows(&self.networks, Some(&a.network)),
            known_asn: knows(&self.asns, a.asn.as_ref()),
            travel_kmh,
            unusual_hour: (self.sign_ins >= HOURS_BASELINE).then(|| self.hours & (1 << a.hour()) == 0),
            ..Signals::default()
        }
    }

    /// Adds a successful sign-in.
    pub fn record(&mut self, a: &Attempt) {
        if let Some(d) = &a.device {
            remember(&mut self.devices, d.clone(), a.at, MAX_DEVICES);
        }
        remember(&mut self.networks, a.network.clone(), a.at, MAX_NETWORKS);
        if let Some(asn) = a.asn {
            remember(&mut self.asns, asn, a.at, MAX_ASNS);
        }
        if let Some((lat, lon)) = a.location {
            self.place = Some(Place { lat, lon, at: a.at });
        }
        self.hours |= 1 << a.hour();
        self.sign_ins = self.sign_ins.saturating_add(1);
    }

    /// Forgets what was last seen before `cutoff` (retention); true when nothing is left.
    pub fn forget_before(&mut self, cutoff: i64) -> bool {
        self.devices.retain(|s| s.last >= cutoff);
        self.networks.retain(|s| s.last >= cutoff);
        self.asns.retain(|s| s.last >= cutoff);
        if self.place.is_some_and(|p| p.at < cutoff) {
            self.place = None;
        }
        self.devices.is_empty() && self.networks.is_empty() && self.asns.is_empty() && self.place.is_none()
    }

    /// How many sign-ins this history has seen.
    pub fn sign_ins(&self) -> u32 {
        self.sign_ins
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bands, Decision, Weights, assess, decide};

    const HOUR: i64 = 3_600_000;
    const PARIS: (f64, f64) = (48.8566, 2.3522);

    fn at(ms: i64, device: &str, network: &str) -> Attempt {
        Attempt {
            at: ms,
            device: Some(device.into()),
            network: network.into(),
            asn: Some(64500),
            location: Some(PARIS),
        }
    }

    #[test]
    fn a_first_sign_in_has_no_baseline_and_a_second_one_does() {
        let mut h = History::default();
        let first = at(10 * HOUR, "d1", "203.0.113.0/24");
        let s = h.signals(&first);
        assert_eq!((s.known_device, s.known_network, s.known_asn), (None, None, None));
        assert_eq!(assess(&s, &Weights::default()).score, 0);
        h.record(&first);
        let again = h.signals(&at(11 * HOUR, "d1", "203.0.113.0/24"));
        assert_eq!(
            (again.known_device, again.known_network, again.known_asn),
            (Some(true), Some(true), Some(true))
        );
        let elsewhere = Attempt {
            asn: Some(64501),
            ..at(11 * HOUR, "d2", "198.51.100.0/24")
        };
        let s = h.signals(&elsewhere);
        assert_eq!(
            (s.known_device, s.known_network, s.known_asn),
            (Some(false), Some(false), Some(false))
        );
        assert_eq!(
            decide(assess(&s, &Weights::default()).score, &Bands::default()),
            Decision::StepUp
        );
        // No device cookie at all is an unknown device (dropping the cookie does not help).
        let bare = Attempt {
            device: None,
            ..at(11 * HOUR, "", "203.0.113.0/24")
        };
        assert_eq!(h.signals(&bare).known_device, Some(false));
    }

    #[test]
    fn impossible_travel_at_the_boundary() {
        let w = Weights::default();
        let mut h = History::default();
        h.record(&at(0, "d1", "n1"));
        // 1000 km due north is about 8.993 degrees of latitude; exactly one hour later.
        let north = |deg: f64, ms: i64| Attempt {
            location: Some((PARIS.0 + deg, PARIS.1)),
            ..at(ms, "d1", "n1")
        };
        let deg = 1000.0 / (6371.0 * std::f64::consts::PI / 180.0);
        let just_under = h.signals(&north(deg * 0.999, HOUR));
        assert!(just_under.travel_kmh.unwrap() < 1000.0);
        assert!(assess(&just_under, &w).reasons.is_empty());
        let just_over = h.signals(&north(deg * 1.001, HOUR));
        assert!(just_over.travel_kmh.unwrap() > 1000.0);
        assert_eq!(assess(&just_over, &w).reasons[0].signal, "impossible_travel");
        // The same distance over two hours is a flight, not a teleport.
        assert!(
            assess(&h.signals(&north(deg * 1.5, 2 * HOUR)), &w)
                .reasons
                .is_empty()
        );
    }

    #[test]
    fn history_stays_bounded_and_forgets_the_least_recent() {
        let mut h = History::default();
        for i in 0..50 {
            h.record(&at(i * HOUR, &format!("d{i}"), &format!("n{i}")));
        }
        assert_eq!(h.devices.len(), MAX_DEVICES);
        assert_eq!(h.networks.len(), MAX_NETWORKS);
        assert_eq!(h.signals(&at(51 * HOUR, "d49", "n49")).known_device, Some(true));
        assert_eq!(h.signals(&at(51 * HOUR, "d0", "n0")).known_device, Some(false));
        assert_eq!(h.sign_ins(), 50);
        // Retention: everything last seen before hour 45 goes.
        assert!(!h.forget_before(45 * HOUR));
        assert_eq!(h.devices.len(), 5);
        assert!(h.forget_before(100 * HOUR));
    }

    #[test]
    fn unusual_hours_need_a_baseline() {
        let mut h = History::default();
        for day in 0..i64::from(HOURS_BASELINE) {
            h.record(&at(day * 24 * HOUR + 9 * HOUR, "d1", "n1"));
        }
        let nine = h.signals(&at(100 * 24 * HOUR + 9 * HOUR, "d1", "n1"));
        assert_eq!(nine.unusual_hour, Some(false));
        let three = h.signals(&at(100 * 24 * HOUR + 3 * HOUR, "d1", "n1"));
        assert_eq!(three.unusual_hour, Some(true));
        let mut young = History::default();
        young.record(&at(9 * HOUR, "d1", "n1"));
        assert_eq!(young.signals(&at(3 * HOUR, "d1", "n1")).unusual_hour, None);
    }
}
