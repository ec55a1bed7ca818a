//! The locations every org has: Control Plane's built-in catalogue of
//! cloud regions, named `PROVIDER-REGION` as Control Plane names them
//! (`aws-us-east-2`, `gcp-us-west1`, `azure-eastus2`), plus custom (BYOK)
//! locations from the simulator's config. `GET /org/ORG/location[/NAME]`
//! renders them in the API's shape (types-go `pkg/location`), and a body
//! that links to a location the org does not have is refused.
//!
//! Where the catalogue comes from is in `docs/simulator.md` ("Locations").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::SimError;
use super::clock::{rfc3339, stable_id};
use super::error::ApiError;

/// Where a location is, as `status.geo` and the `cpln/*` tags show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Geo {
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub continent: String,
    #[serde(default)]
    pub lat: f64,
    #[serde(default)]
    pub lon: f64,
}

/// A location an org has besides the built-in catalogue, from the
/// simulator config's `locations` (a BYOK cluster, or a cloud region the
/// catalogue lacks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomLocation {
    pub name: String,
    /// `byok` unless given (as `cpln location create` sends).
    #[serde(default = "byok")]
    pub provider: String,
    /// The provider's region; the name when absent (as the API shows BYOK
    /// locations).
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub geo: Option<Geo>,
}

fn byok() -> String {
    "byok".to_owned()
}

fn enabled() -> bool {
    true
}

impl CustomLocation {
    /// A BYOK location named `name`, enabled, with no geo.
    pub fn byok(name: impl Into<String>) -> Self {
        Self { name: name.into(), provider: byok(), region: None, enabled: true, geo: None }
    }
}

/// One built-in location: its name and where it is. The provider and the
/// region are the two halves of the name.
struct Builtin {
    name: &'static str,
    city: &'static str,
    state: &'static str,
    country: &'static str,
    continent: &'static str,
    lat: f64,
    lon: f64,
}

const fn at(
    name: &'static str,
    city: &'static str,
    state: &'static str,
    country: &'static str,
    continent: &'static str,
    lat: f64,
    lon: f64,
) -> Builtin {
    Builtin { name, city, state, country, continent, lat, lon }
}

const NA: &str = "North America";
const SA: &str = "South America";
const EU: &str = "Europe";
const AS: &str = "Asia";
const OC: &str = "Oceania";
const AF: &str = "Africa";

/// The built-in catalogue, sorted by name.
const CATALOGUE: &[Builtin] = &[
    at("aws-af-south-1", "Cape Town", "Western Cape", "South Africa", AF, -33.92, 18.42),
    at("aws-ap-east-1", "Hong Kong", "", "Hong Kong", AS, 22.32, 114.17),
    at("aws-ap-northeast-1", "Tokyo", "", "Japan", AS, 35.68, 139.69),
    at("aws-ap-northeast-2", "Seoul", "", "South Korea", AS, 37.57, 126.98),
    at("aws-ap-northeast-3", "Osaka", "", "Japan", AS, 34.69, 135.50),
    at("aws-ap-south-1", "Mumbai", "Maharashtra", "India", AS, 19.08, 72.88),
    at("aws-ap-southeast-1", "Singapore", "", "Singapore", AS, 1.35, 103.82),
    at("aws-ap-southeast-2", "Sydney", "New South Wales", "Australia", OC, -33.87, 151.21),
    at("aws-ca-central-1", "Montreal", "Quebec", "Canada", NA, 45.50, -73.57),
    at("aws-eu-central-1", "Frankfurt", "Hesse", "Germany", EU, 50.11, 8.68),
    at("aws-eu-north-1", "Stockholm", "", "Sweden", EU, 59.33, 18.07),
    at("aws-eu-south-1", "Milan", "Lombardy", "Italy", EU, 45.46, 9.19),
    at("aws-eu-west-1", "Dublin", "", "Ireland", EU, 53.35, -6.26),
    at("aws-eu-west-2", "London", "England", "United Kingdom", EU, 51.51, -0.13),
    at("aws-eu-west-3", "Paris", "Ile-de-France", "France", EU, 48.86, 2.35),
    at("aws-il-central-1", "Tel Aviv", "", "Israel", AS, 32.09, 34.78),
    at("aws-me-south-1", "Manama", "", "Bahrain", AS, 26.23, 50.59),
    at("aws-sa-east-1", "Sao Paulo", "Sao Paulo", "Brazil", SA, -23.55, -46.63),
    at("aws-us-east-1", "Ashburn", "Virginia", "USA", NA, 39.04, -77.49),
    at("aws-us-east-2", "Columbus", "Ohio", "USA", NA, 39.96, -83.00),
    at("aws-us-west-1", "San Francisco", "California", "USA", NA, 37.77, -122.42),
    at("aws-us-west-2", "Portland", "Oregon", "USA", NA, 45.52, -122.68),
    at("azure-australiaeast", "Sydney", "New South Wales", "Australia", OC, -33.87, 151.21),
    at("azure-brazilsouth", "Sao Paulo", "Sao Paulo", "Brazil", SA, -23.55, -46.63),
    at("azure-canadacentral", "Toronto", "Ontario", "Canada", NA, 43.65, -79.38),
    at("azure-centralindia", "Pune", "Maharashtra", "India", AS, 18.52, 73.86),
    at("azure-centralus", "Des Moines", "Iowa", "USA", NA, 41.59, -93.62),
    at("azure-eastasia", "Hong Kong", "", "Hong Kong", AS, 22.32, 114.17),
    at("azure-eastus", "Richmond", "Virginia", "USA", NA, 37.54, -77.44),
    at("azure-eastus2", "Boydton", "Virginia", "USA", NA, 36.67, -78.39),
    at("azure-francecentral", "Paris", "Ile-de-France", "France", EU, 48.86, 2.35),
    at("azure-germanywestcentral", "Frankfurt", "Hesse", "Germany", EU, 50.11, 8.68),
    at("azure-japaneast", "Tokyo", "", "Japan", AS, 35.68, 139.69),
    at("azure-koreacentral", "Seoul", "", "South Korea", AS, 37.57, 126.98),
    at("azure-northeurope", "Dublin", "", "Ireland", EU, 53.35, -6.26),
    at("azure-norwayeast", "Oslo", "", "Norway", EU, 59.91, 10.75),
    at("azure-southafricanorth", "Johannesburg", "Gauteng", "South Africa", AF, -26.20, 28.05),
    at("azure-southcentralus", "San Antonio", "Texas", "USA", NA, 29.42, -98.49),
    at("azure-southeastasia", "Singapore", "", "Singapore", AS, 1.35, 103.82),
    at("azure-swedencentral", "Gavle", "", "Sweden", EU, 60.67, 17.14),
    at("azure-switzerlandnorth", "Zurich", "", "Switzerland", EU, 47.38, 8.54),
    at("azure-uksouth", "London", "England", "United Kingdom", EU, 51.51, -0.13),
    at("azure-westeurope", "Amsterdam", "North Holland", "Netherlands", EU, 52.37, 4.90),
    at("azure-westus2", "Quincy", "Washington", "USA", NA, 47.23, -119.85),
    at("azure-westus3", "Phoenix", "Arizona", "USA", NA, 33.45, -112.07),
    at("gcp-asia-east1", "Changhua", "", "Taiwan", AS, 24.08, 120.54),
    at("gcp-asia-east2", "Hong Kong", "", "Hong Kong", AS, 22.32, 114.17),
    at("gcp-asia-northeast1", "Tokyo", "", "Japan", AS, 35.68, 139.69),
    at("gcp-asia-northeast3", "Seoul", "", "South Korea", AS, 37.57, 126.98),
    at("gcp-asia-south1", "Mumbai", "Maharashtra", "India", AS, 19.08, 72.88),
    at("gcp-asia-southeast1", "Singapore", "", "Singapore", AS, 1.35, 103.82),
    at("gcp-australia-southeast1", "Sydney", "New South Wales", "Australia", OC, -33.87, 151.21),
    at("gcp-europe-north1", "Hamina", "", "Finland", EU, 60.57, 27.20),
    at("gcp-europe-west1", "St. Ghislain", "Hainaut", "Belgium", EU, 50.47, 3.82),
    at("gcp-europe-west2", "London", "England", "United Kingdom", EU, 51.51, -0.13),
    at("gcp-europe-west3", "Frankfurt", "Hesse", "Germany", EU, 50.11, 8.68),
    at("gcp-europe-west4", "Eemshaven", "Groningen", "Netherlands", EU, 53.44, 6.83),
    at("gcp-europe-west6", "Zurich", "", "Switzerland", EU, 47.38, 8.54),
    at("gcp-me-west1", "Tel Aviv", "", "Israel", AS, 32.09, 34.78),
    at("gcp-northamerica-northeast1", "Montreal", "Quebec", "Canada", NA, 45.50, -73.57),
    at("gcp-southamerica-east1", "Sao Paulo", "Sao Paulo", "Brazil", SA, -23.55, -46.63),
    at("gcp-us-central1", "Council Bluffs", "Iowa", "USA", NA, 41.26, -95.86),
    at("gcp-us-east1", "Moncks Corner", "South Carolina", "USA", NA, 33.20, -80.01),
    at("gcp-us-east4", "Ashburn", "Virginia", "USA", NA, 39.04, -77.49),
    at("gcp-us-west1", "The Dalles", "Oregon", "USA", NA, 45.59, -121.18),
    at("gcp-us-west2", "Los Angeles", "California", "USA", NA, 34.05, -118.24),
];

/// One location as the API serves it.
struct Entry<'a> {
    name: &'a str,
    origin: &'static str,
    provider: &'a str,
    region: &'a str,
    enabled: bool,
    geo: Option<Geo>,
}

impl Builtin {
    fn entry(&self) -> Entry<'_> {
        let (provider, region) = self.name.split_once('-').unwrap_or((self.name, self.name));
        Entry {
            name: self.name,
            origin: "builtin",
            provider,
            region,
            enabled: true,
            geo: Some(Geo {
                city: self.city.to_owned(),
                state: self.state.to_owned(),
                country: self.country.to_owned(),
                continent: self.continent.to_owned(),
                lat: self.lat,
                lon: self.lon,
            }),
        }
    }
}

impl CustomLocation {
    fn entry(&self) -> Entry<'_> {
        Entry {
            name: &self.name,
            origin: "custom",
            provider: &self.provider,
            region: self.region.as_deref().unwrap_or(&self.name),
            enabled: self.enabled,
            geo: self.geo.clone(),
        }
    }
}

impl Entry<'_> {
    /// The location as `GET /org/ORG/location/NAME` answers.
    fn render(&self, org: &str) -> Value {
        let mut tags = Map::new();
        let mut status = json!({"ipRanges": []});
        if let Some(geo) = &self.geo {
            let mut place = Map::new();
            for (key, value) in [
                ("city", &geo.city),
                ("state", &geo.state),
                ("country", &geo.country),
                ("continent", &geo.continent),
            ] {
                if !value.is_empty() {
                    place.insert(key.into(), json!(value));
                    if key != "state" {
                        tags.insert(format!("cpln/{key}"), json!(value));
                    }
                }
            }
            place.insert("lat".into(), json!(geo.lat));
            place.insert("lon".into(), json!(geo.lon));
            status["geo"] = Value::Object(place);
        }
        let path = format!("/org/{org}/location/{}", self.name);
        json!({
            "id": stable_id(&path),
            "name": self.name,
            "kind": "location",
            "version": 1,
            "description": self.name,
            "tags": tags,
            "created": rfc3339(0),
            "lastModified": rfc3339(0),
            "links": [{"rel": "self", "href": path}, {"rel": "org", "href": format!("/org/{org}")}],
            "origin": self.origin,
            "provider": self.provider,
            "region": self.region,
            "spec": {"enabled": self.enabled},
            "status": status,
        })
    }
}

/// The locations of every org of one simulator: the catalogue and the
/// config's custom ones.
#[derive(Debug, Default)]
pub(crate) struct Locations {
    custom: Vec<CustomLocation>,
}

impl Locations {
    pub fn new(custom: &[CustomLocation]) -> Self {
        Self { custom: custom.to_vec() }
    }

    fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        CATALOGUE.iter().map(Builtin::entry).chain(self.custom.iter().map(CustomLocation::entry))
    }

    /// Every location, built-in first (sorted by name), then custom ones.
    pub fn list(&self, org: &str) -> Vec<Value> {
        self.entries().map(|e| e.render(org)).collect()
    }

    pub fn get(&self, org: &str, name: &str) -> Option<Value> {
        self.entries().find(|e| e.name == name).map(|e| e.render(org))
    }

    fn exists(&self, name: &str) -> bool {
        self.entries().any(|e| e.name == name)
    }

    /// Refuses (400) a body that links to a location the org does not
    /// have, naming every such link and the field it is in.
    pub fn check_links(&self, org: &str, body: &Map<String, Value>) -> Result<(), ApiError> {
        let mut unknown = Vec::new();
        for (key, value) in body {
            // As link qualification does: free text is not a link.
            if !matches!(key.as_str(), "description" | "tags" | "data") {
                self.find_unknown(org, key, value, &mut unknown);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let message = unknown
            .iter()
            .map(|(field, name)| format!("{field}: location '{name}' does not exist"))
            .collect::<Vec<_>>()
            .join("; ");
        let details: Vec<Value> =
            unknown.iter().map(|(field, name)| json!({"field": field, "location": name})).collect();
        Err(ApiError::bad_request(message).with_details(json!({"locations": details})))
    }

    fn find_unknown(
        &self,
        org: &str,
        field: &str,
        value: &Value,
        unknown: &mut Vec<(String, String)>,
    ) {
        match value {
            Value::String(text) => {
                if let Some(name) = location_name(org, text)
                    && !self.exists(name)
                {
                    unknown.push((field.to_owned(), name.to_owned()));
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.find_unknown(org, &format!("{field}[{index}]"), item, unknown);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.find_unknown(org, &format!("{field}.{key}"), item, unknown);
                }
            }
            _ => {}
        }
    }
}

/// The location a link names: `//location/NAME` or
/// `/org/ORG/location/NAME` (this org's).
fn location_name<'a>(org: &str, text: &'a str) -> Option<&'a str> {
    let name = text
        .strip_prefix("//location/")
        .or_else(|| text.strip_prefix("/org/")?.strip_prefix(org)?.strip_prefix("/location/"))?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Whether `name` is in the built-in catalogue.
pub fn is_builtin(name: &str) -> bool {
    CATALOGUE.iter().any(|b| b.name == name)
}

/// Custom locations must have resource names, once each, none built in.
pub(crate) fn check_custom(custom: &[CustomLocation]) -> Result<(), SimError> {
    let mut seen = std::collections::BTreeSet::new();
    for location in custom {
        let name = location.name.as_str();
        let valid = (2..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('-')
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let problem = if !valid {
            "is not a valid location name (^[a-z][-a-z0-9]*[a-z0-9]$, at most 63 characters)"
        } else if is_builtin(name) {
            "is built in already"
        } else if !seen.insert(name) {
            "is listed twice"
        } else {
            continue;
        };
        return Err(SimError::InvalidLocation(format!("custom location '{name}' {problem}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_sorted_unique_and_named_provider_region() {
        let names: Vec<&str> = CATALOGUE.iter().map(|b| b.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for builtin in CATALOGUE {
            let entry = builtin.entry();
            assert!(["aws", "gcp", "azure"].contains(&entry.provider), "{}", builtin.name);
            assert!(!entry.region.is_empty() && !builtin.city.is_empty(), "{}", builtin.name);
        }
        for name in ["aws-eu-central-1", "gcp-us-west1", "azure-eastus2", "aws-us-east-2"] {
            assert!(is_builtin(name), "{name}");
        }
    }

    #[test]
    fn renders_the_api_shape() {
        let locations = Locations::new(&[CustomLocation::byok("edge-lab")]);
        let gcp = locations.get("acme", "gcp-us-west1").unwrap();
        assert_eq!(
            (&gcp["provider"], &gcp["region"], &gcp["origin"]),
            (&json!("gcp"), &json!("us-west1"), &json!("builtin"))
        );
        assert_eq!(gcp["status"]["geo"]["city"], "The Dalles");
        assert_eq!(gcp["tags"]["cpln/country"], "USA");
        assert_eq!(gcp["links"][0]["href"], "/org/acme/location/gcp-us-west1");
        let custom = locations.get("acme", "edge-lab").unwrap();
        assert_eq!(
            (&custom["provider"], &custom["region"], &custom["origin"], &custom["spec"]),
            (&json!("byok"), &json!("edge-lab"), &json!("custom"), &json!({"enabled": true}))
        );
        assert_eq!(custom["tags"], json!({}));
        assert_eq!(locations.list("acme").len(), CATALOGUE.len() + 1);
        assert!(locations.get("acme", "aws-mars-1").is_none());
    }

    #[test]
    fn unknown_location_links_are_refused_with_their_field() {
        let locations = Locations::default();
        let body = json!({"name": "app", "description": "//location/nowhere",
            "spec": {"staticPlacement": {"locationLinks": [
                "//location/aws-us-east-2", "/org/acme/location/gcp-us-west9", "//location/mars"]}}});
        let error = locations.check_links("acme", body.as_object().unwrap()).unwrap_err();
        assert_eq!(error.status.as_u16(), 400);
        assert_eq!(
            &*error.message,
            "spec.staticPlacement.locationLinks[1]: location 'gcp-us-west9' does not exist; \
             spec.staticPlacement.locationLinks[2]: location 'mars' does not exist"
        );
        let known =
            json!({"spec": {"staticPlacement": {"locationLinks": ["//location/azure-eastus2"]}}});
        assert!(locations.check_links("acme", known.as_object().unwrap()).is_ok());
    }

    #[test]
    fn custom_locations_need_new_valid_names() {
        assert!(check_custom(&[CustomLocation::byok("edge-lab")]).is_ok());
        for (custom, problem) in [
            (vec![CustomLocation::byok("Edge_Lab")], "is not a valid location name"),
            (vec![CustomLocation::byok("gcp-us-west1")], "is built in already"),
            (vec![CustomLocation::byok("edge"), CustomLocation::byok("edge")], "is listed twice"),
        ] {
            let message = check_custom(&custom).unwrap_err().to_string();
            assert!(message.contains(problem), "{message}");
        }
    }
}
