//! `rampart-app`: serves the sample app (default) or runs an administration command.
//! See [`rampart_app::cli`].

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    rampart_app::cli::main().await
}
