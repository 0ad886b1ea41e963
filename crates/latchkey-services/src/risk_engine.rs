//! What the risk engine loads once per process: GeoIP databases, the deny-list and the weights.
//! Scoring itself is `latchkey-risk`'s; gathering a request's signals is the server's sign-in flow.

use crate::ServiceError;
use ipnet::IpNet;
use latchkey_risk::Weights;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

pub struct RiskEngine {
    geo: Vec<maxminddb::Reader<Vec<u8>>>,
    denylist: Vec<IpNet>,
    pub weights: Weights,
}

/// The parts of a GeoIP2/GeoLite2 city or ASN record the signals use.
#[derive(Deserialize)]
struct GeoRecord {
    location: Option<GeoLocation>,
    autonomous_system_number: Option<u32>,
    country: Option<GeoNamed>,
    city: Option<GeoNamed>,
}

/// A country or city: its ISO code (countries) and English name.
#[derive(Deserialize)]
struct GeoNamed {
    iso_code: Option<String>,
    names: Option<std::collections::BTreeMap<String, String>>,
}

impl GeoNamed {
    fn name(&self) -> Option<&str> {
        self.names
            .as_ref()
            .and_then(|n| n.get("en"))
            .map(String::as_str)
            .or(self.iso_code.as_deref())
    }
}

#[derive(Deserialize)]
struct GeoLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// A deny-list line that is neither an address nor a CIDR range.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {entry:?} is not an address or CIDR range")]
pub struct DenylistError {
    pub line: usize,
    pub entry: String,
}

/// Parses a deny-list: one address or CIDR range per line, `#` starts a comment.
pub fn parse_denylist(text: &str) -> Result<Vec<IpNet>, DenylistError> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let entry = line.split('#').next().unwrap_or("").trim();
            (!entry.is_empty()).then_some((i + 1, entry))
        })
        .map(|(n, entry)| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| DenylistError {
                    line: n,
                    entry: entry.to_owned(),
                })
        })
        .collect()
}

impl RiskEngine {
    /// Opens the GeoIP databases and the deny-list; an error names the setting and the file.
    pub fn open(geoip: &[PathBuf], denylist: Option<&PathBuf>) -> Result<Self, ServiceError> {
        let geo = geoip
            .iter()
            .map(|p| {
                maxminddb::Reader::open_readfile(p).map_err(|e| ServiceError::SettingFile {
                    setting: "LATCHKEY_GEOIP_DB",
                    path: p.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let denylist = match denylist {
            None => Vec::new(),
            Some(p) => {
                let bad = |message: String| ServiceError::SettingFile {
                    setting: "LATCHKEY_RISK_DENYLIST",
                    path: p.clone(),
                    message,
                };
                let text = std::fs::read_to_string(p).map_err(|e| bad(e.to_string()))?;
                parse_denylist(&text).map_err(|e| bad(e.to_string()))?
            }
        };
        Ok(Self {
            geo,
            denylist,
            weights: Weights::default(),
        })
    }

    /// The address's autonomous system and (latitude, longitude), as far as the databases know.
    pub fn locate(&self, ip: IpAddr) -> (Option<u32>, Option<(f64, f64)>) {
        let (mut asn, mut place) = (None, None);
        for db in &self.geo {
            let Ok(Some(r)) = db.lookup(ip).and_then(|l| l.decode::<GeoRecord>()) else {
                continue;
            };
            asn = asn.or(r.autonomous_system_number);
            if let Some(GeoLocation {
                latitude: Some(lat),
                longitude: Some(lon),
            }) = r.location
            {
                place = place.or(Some((lat, lon)));
            }
        }
        (asn, place)
    }

    /// Where the address is, in words ("Berlin, Germany"), for the person's own activity list;
    /// `None` when no city database knows it.
    pub fn place(&self, ip: IpAddr) -> Option<String> {
        self.geo.iter().find_map(|db| {
            let r = db.lookup(ip).ok()?.decode::<GeoRecord>().ok()??;
            let country = r.country.as_ref().and_then(GeoNamed::name);
            let city = r.city.as_ref().and_then(GeoNamed::name);
            match (city, country) {
                (Some(city), Some(country)) => Some(format!("{city}, {country}")),
                (None, Some(one)) | (Some(one), None) => Some(one.to_owned()),
                (None, None) => None,
            }
        })
    }

    pub fn denylisted(&self, ip: IpAddr) -> bool {
        self.denylist.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_lists_take_cidrs_addresses_and_comments() {
        let list = parse_denylist("# tor exits\n203.0.113.0/24\n\n2001:db8::1  # one host\n").unwrap();
        assert_eq!(list.len(), 2);
        assert!(
            list.iter()
                .any(|n| n.contains(&"203.0.113.77".parse::<IpAddr>().unwrap()))
        );
        assert!(
            list.iter()
                .any(|n| n.contains(&"2001:db8::1".parse::<IpAddr>().unwrap()))
        );
        assert!(
            !list
                .iter()
                .any(|n| n.contains(&"198.51.100.1".parse::<IpAddr>().unwrap()))
        );
        let err = parse_denylist("10.0.0.0/8\nnot-a-range\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }
}
