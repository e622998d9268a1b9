//! `auralis presets`: the named starting points, one a line.

use crate::music::PRESETS;

pub fn command(json: bool) -> anyhow::Result<()> {
    if json {
        let list: Vec<_> = PRESETS
            .iter()
            .map(|p| (p.name, p.params(0), p.description))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for p in PRESETS {
        println!("{p}");
    }
    Ok(())
}
