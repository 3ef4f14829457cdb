//! Rebuilds when a migration changes (they are embedded by `sqlx::migrate!`), and tells the crate
//! where cargo's target directory is, so that the zero-setup PostgreSQL cluster lives under it.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out: four levels below the target directory
    // (five with a `--target <triple>` build, which then shares `<target>/<triple>` instead).
    let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
    let target = Path::new(&out_dir)
        .ancestors()
        .nth(4)
        .unwrap_or(Path::new("target"));
    println!("cargo:rustc-env=LEDGER_TARGET_DIR={}", target.display());
}
