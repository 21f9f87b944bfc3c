//! Entry points for the fuzz targets under `fuzz/`, and the mutator their regression tests use
//! to run each briefly on every test run. Each entry must return, never panic, whatever the input.

/// A server's manifest as owners write it (`switchboard.toml`): parsed and validated, then the
/// facts read from it that decide access.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(manifest) = crate::Manifest::parse(&text) else {
        return;
    };
    let _ = manifest.validate();
    for tool in manifest.tools.keys() {
        let _ = manifest.tool_policy(tool);
    }
    let _ = crate::parse_groups(&manifest.access.allowed_groups.join(","));
}

/// `seeds`, then `count` mutations of them (bytes replaced, inputs cut short, other seeds
/// spliced in, structural bytes inserted), from a fixed `seed` so a failure repeats.
pub fn mutations(seeds: &[&[u8]], count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut inputs: Vec<Vec<u8>> = seeds.iter().map(|s| s.to_vec()).collect();
    if seeds.is_empty() {
        return inputs;
    }
    const STRUCTURE: &[u8] = b"\n\n{}[]\":,=\\'\xff\x00";
    for _ in 0..count {
        let mut input = seeds[rng.usize(..seeds.len())].to_vec();
        for _ in 0..rng.usize(1..6) {
            match rng.u8(..4) {
                0 if !input.is_empty() => {
                    let i = rng.usize(..input.len());
                    input[i] = rng.u8(..);
                }
                1 if !input.is_empty() => input.truncate(rng.usize(..input.len())),
                2 => {
                    let other = seeds[rng.usize(..seeds.len())];
                    let at = rng.usize(..=input.len());
                    let from = rng.usize(..=other.len());
                    input.splice(at..at, other[from..].iter().copied());
                }
                _ => {
                    let at = rng.usize(..=input.len());
                    input.insert(at, STRUCTURE[rng.usize(..STRUCTURE.len())]);
                }
            }
        }
        inputs.push(input);
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_entry_survives_mangled_input() {
        let seeds: [&[u8]; 3] = [
            br##"
[server]
name = "finance-docs"
description = "Finance runbooks"
owner_team = "finance-eng"
support_channel = "#finance-help"
data_classification = "confidential"
[access]
allowed_groups = ["finance", "finance-eng"]
[policies.leads]
groups = ["finance-leads"]
[tools.search_docs]
minutes_saved = 4.5
[tools.get_doc]
policy = "leads"
requires_approval = true
"##,
            b"[server]\nname = \"x\"\n[tools.\"a b\"]\nminutes_saved = -1e309\n",
            b"[server]\nname = 7\n[[tools]]\n[access]\nallowed_groups = \"\"\n",
        ];
        for input in mutations(&seeds, 3_000, 0x5eed) {
            manifest(&input);
        }
    }
}
