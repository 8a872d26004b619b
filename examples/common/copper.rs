//! `data/emt_copper.json`: 200 Cu clusters (38 and 55 atoms) with energies and forces from
//! ASE's EMT calculator — real data none of us wrote. Shared by `potential_train --copper` and
//! `burn_equivariant`.
#![allow(dead_code)]

/// One cluster, lengths in units of the file's cutoff hint (5 Å), so that a model with cutoff 1
/// sees the file's suggested neighbourhood.
pub struct Cluster {
    pub positions: Vec<[f64; 3]>,
    /// eV.
    pub energy: f64,
    /// eV per unit length (eV/Å × 5).
    pub forces: Vec<[f64; 3]>,
}

/// The training clusters, the held-out ones (the file's last `test`), and the length unit in
/// Å.
pub struct Copper {
    pub train: Vec<Cluster>,
    pub test: Vec<Cluster>,
    pub unit_angstrom: f64,
}

pub fn load() -> Result<Copper, Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/emt_copper.json");
    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let unit = data["cutoff_hint_angstrom"].as_f64().unwrap_or(5.0);
    let held_out = data["test"].as_u64().unwrap_or(40) as usize;
    let triples = |v: &serde_json::Value, factor: f64| -> Vec<[f64; 3]> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|p| [0, 1, 2].map(|k| p[k].as_f64().unwrap_or(f64::NAN) * factor))
            .collect()
    };
    let mut train: Vec<Cluster> = data["configurations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Cluster {
            positions: triples(&c["positions"], 1.0 / unit),
            energy: c["energy"].as_f64().unwrap_or(f64::NAN),
            forces: triples(&c["forces"], unit),
        })
        .collect();
    if train.len() <= held_out {
        return Err(format!("{path}: {} clusters, {held_out} held out", train.len()).into());
    }
    let test = train.split_off(train.len() - held_out);
    Ok(Copper {
        train,
        test,
        unit_angstrom: unit,
    })
}
